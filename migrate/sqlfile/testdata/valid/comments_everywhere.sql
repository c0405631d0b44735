-- header comment
-- +goose Up
-- before the first statement; this ";" is in a comment
CREATE TABLE a (id int); -- ";" then a comment: the statement ends here
CREATE TABLE b ( -- a comment inside a statement is kept;
    -- so is a whole-line comment; even one ending in ";"
    id int
); -- closing comment
SELECT 1 -- the last word before "--" is "1": the statement goes on;
;
SELECT 2;-- no space before "--": the word "2;--" does not end in ";"
SELECT 3; /* a block comment at the end hides the ";" */
SELECT 4;
-- trailing comment in Up

-- +goose Down
   -- indented comment (fine: it is not an annotation)
DROP TABLE b;	-- tab before the comment
DROP TABLE a;
-- trailing comment in Down
