-- +goose Up
   
SELECT 1;
	
-- comment after a blank line
SELECT 2;
-- +goose Down
  
