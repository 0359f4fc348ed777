-- The confirmation page of an instruction that waits for a person: an unguessable id for its URL
-- and a single-use token its form posts back. Both are made anew whenever the instruction starts
-- waiting, and the token is cleared when it stops.
ALTER TABLE instructions ADD COLUMN page_id TEXT;
ALTER TABLE instructions ADD COLUMN page_token TEXT;
CREATE UNIQUE INDEX instructions_by_page ON instructions(page_id) WHERE page_id IS NOT NULL;
