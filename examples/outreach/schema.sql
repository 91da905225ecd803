-- Outpost example schema: a street-outreach and missing-from-care program.
--
-- Every synced table has a text UUIDv7 primary key made on the device (records are created
-- offline) and a team_id scope column: a device sees and writes only its worker's teams' rows.
-- Multiple-choice screening answers are stored as comma-separated codes so that a schema
-- upgrade can add codes without a migration; the codes are listed beside each column.

-- One meeting between an outreach worker and a young person.
CREATE TABLE contacts (
    id              TEXT PRIMARY KEY NOT NULL,   -- UUIDv7
    team_id         TEXT NOT NULL,               -- scope
    worker_id       TEXT NOT NULL,
    contacted_at    TEXT NOT NULL,               -- ISO 8601, local time with offset
    location        TEXT,                        -- place description, never GPS by default
    alias           TEXT NOT NULL,               -- the name the young person gave; not legal name
    age_estimate    INTEGER CHECK (age_estimate IS NULL OR age_estimate BETWEEN 5 AND 30),
    gender          TEXT,
    -- Trafficking-risk indicators screened (codes): controlled_movement, no_id_documents,
    -- older_partner, exchange_sex_for_needs, scripted_answers, branding_tattoo, multiple_phones,
    -- unexplained_money, fear_of_authorities, signs_of_abuse
    risk_indicators TEXT,
    risk_level      TEXT CHECK (risk_level IS NULL OR risk_level IN ('none','low','medium','high')),
    -- Needs identified and provided (codes): shelter, food, clothes, toiletries, medical,
    -- vital_records, phone, transport, legal, counselling
    needs           TEXT,
    provided        TEXT,
    referral_id     TEXT,                        -- referrals.id when a referral was made
    notes           TEXT,
    -- Schema version 2 (additive: appended, nullable).
    -- Intangible needs identified (codes): connection, belonging, support, trust
    intangible_needs TEXT
);

-- A period a young person in care was missing from their placement.
CREATE TABLE missing_episodes (
    id                TEXT PRIMARY KEY NOT NULL,
    team_id           TEXT NOT NULL,
    worker_id         TEXT NOT NULL,
    alias             TEXT NOT NULL,
    placement_type    TEXT,                      -- foster_home, group_home, kinship, other
    went_missing_at   TEXT NOT NULL,
    returned_at       TEXT,                      -- NULL while still missing
    reported_to_police INTEGER NOT NULL DEFAULT 0 CHECK (reported_to_police IN (0, 1)),
    whereabouts       TEXT,                      -- where they were while absent
    -- Primary factors for running (codes): placement_conflict, family_contact, peer_pull,
    -- romantic_partner, substance_use, school, exploitation, autonomy, unknown
    run_factors       TEXT,
    -- Screening of the experience while absent (codes): sexual_exploitation, labour_exploitation,
    -- criminal_exploitation, violence, substance_use, rough_sleeping, no_concerns
    absence_screening TEXT,
    return_interview_at TEXT,
    notes             TEXT,
    -- Schema version 2 (additive: appended, nullable): the duties of P.L. 113-183 with their
    -- times. Reported to law enforcement (time, report number) and to NCMEC (time, case number)
    -- within 24 hours of going missing; the primary factors for running (run_factors) and the
    -- absence screening (absence_screening) recorded with when they were determined; recovery
    -- and safety plan date. Times are ISO 8601 with offset, like went_missing_at.
    police_reported_at   TEXT,
    police_report_number TEXT,
    ncmec_reported_at    TEXT,
    ncmec_case_number    TEXT,
    run_factors_at       TEXT,
    screened_at          TEXT,
    safety_plan_at       TEXT
);

-- A referral of a young person to a service.
CREATE TABLE referrals (
    id            TEXT PRIMARY KEY NOT NULL,
    team_id       TEXT NOT NULL,
    worker_id     TEXT NOT NULL,
    alias         TEXT NOT NULL,
    service       TEXT NOT NULL,   -- shelter, health, legal, education, anti_trafficking_hotline, ...
    organisation  TEXT,
    referred_at   TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'made'
                  CHECK (status IN ('made','accepted','declined','completed','lost_contact')),
    outcome       TEXT
);
