-- only comments
-- and no Up annotation

