-- Version 10: one trigram index over each entry's distinct words
-- instead of two over its whole header and body (store/postgres:
-- fulltext.go, textWords; bench/README.md, "Session 17").
--
-- Indexing a text with pg_trgm is splitting it into words and sorting
-- the trigrams of every occurrence of every word; a mail's text repeats
-- its words, so most of that work produced trigrams already had. words
-- holds each word of the header and the body once (sorted, between
-- spaces: ' alpha beta '), a word being a run of bytes other than the
-- ASCII punctuation, space and control characters, so its trigrams are
-- those of the header and the body together, made once. The index on
-- words only narrows a search: a pattern's words must each be there
-- (SearchText: wordPatterns), and the pattern itself is then checked
-- against header and body, as before, so answers stay exact.
--
-- mailyard_text_words is that splitting in SQL, for the entries stored
-- before this version; the writers compute the same in Go (textWords),
-- and TestTextWordsSQL checks that the two agree.
CREATE FUNCTION mailyard_text_words(header text, body text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT coalesce(' ' || string_agg(w, ' ' ORDER BY w COLLATE "C") || ' ', '')
	FROM (SELECT DISTINCT w COLLATE "C" AS w
		FROM regexp_split_to_table(header || ' ' || body, '[\x01-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+') AS w
		WHERE w <> '') AS x
$$;

ALTER TABLE text_docs ADD COLUMN words text COLLATE "C" NOT NULL DEFAULT '';
DO $$
BEGIN
	IF 'lz4' = ANY (coalesce((SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'), '{}')) THEN
		ALTER TABLE text_docs ALTER COLUMN words SET COMPRESSION lz4;
	END IF;
END
$$;
-- The old indexes go first, so that filling words does not insert every
-- entry's trigrams into them again.
DROP INDEX text_docs_header;
DROP INDEX text_docs_body;
UPDATE text_docs SET words = mailyard_text_words(header, body) WHERE state = 1;
CREATE INDEX text_docs_words ON text_docs USING gin (words gin_trgm_ops);
