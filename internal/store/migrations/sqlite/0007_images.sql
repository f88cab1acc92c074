-- Pictures made by image models: each ledger row counts them (0 for a
-- chat request), priced per picture into cost_picodollars.
ALTER TABLE spend ADD COLUMN images INTEGER NOT NULL DEFAULT 0;
