-- +goose up   
--+goose no transaction	
-- +goose statementbegin
SELECT 1
-- +GOOSE StatementEnd: an upper-case marker is only a comment
--   +goose   STATEMENTEND  
-- +goose DOWN
SELECT 2;
