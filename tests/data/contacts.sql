-- Example schema for tests and first trials: outreach contacts, visits and referrals.
-- Every table has a TEXT UUID primary key (devices create rows offline) and a team_id scope.
CREATE TABLE contacts (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL,
    name TEXT NOT NULL,
    age INTEGER CHECK (age IS NULL OR (age BETWEEN 0 AND 25)),
    location TEXT,
    notes TEXT,
    risk_level INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER
);
CREATE INDEX contacts_team ON contacts(team_id);

CREATE TABLE visits (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    summary TEXT
);

CREATE TABLE referrals (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL,
    agency TEXT,
    status TEXT
);
