-- +goose Up
   
-- a comment after a line of spaces is kept, and never terminated
