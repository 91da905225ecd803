-- Version 2 of contacts.sql: an additive upgrade (new nullable and defaulted columns at the
-- end of contacts, a new table, a new index).
CREATE TABLE contacts (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL,
    name TEXT NOT NULL,
    age INTEGER CHECK (age IS NULL OR (age BETWEEN 0 AND 25)),
    location TEXT,
    notes TEXT,
    risk_level INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER,
    language TEXT,
    consent INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX contacts_team ON contacts(team_id);
CREATE INDEX contacts_name ON contacts(name);

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

CREATE TABLE follow_ups (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    due_at INTEGER
);
