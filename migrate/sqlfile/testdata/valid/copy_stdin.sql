-- +goose Up
-- +goose StatementBegin
COPY public.colors (id, name) FROM stdin;
1	red
2	green
\.
-- +goose StatementEnd
