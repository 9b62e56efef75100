"""The database schema and its forward migrations.

``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1``; the
version lives in ``PRAGMA user_version``. Add a new entry to change the
schema; never edit one that has shipped.
"""

from __future__ import annotations

IMAGE_STATUSES = ("pending", "scored", "error", "deleted")
MODEL_STATES = ("disabled", "pending", "fetching", "cached", "ready", "failed", "offline-unavailable")
COMMAND_KINDS = ("rescan", "reselect", "retry-model", "pin", "unpin", "reject")

_V1 = """
CREATE TABLE images (
    id            INTEGER PRIMARY KEY,
    path          TEXT NOT NULL UNIQUE,     -- absolute path, surrogate-escaped when not UTF-8
    root          TEXT NOT NULL,            -- the watched folder it was found under
    size          INTEGER,
    mtime_ns      INTEGER,
    content_hash  TEXT,                     -- blake2b of the file bytes (hex); finds moves
    width         INTEGER,                  -- after EXIF orientation
    height        INTEGER,
    taken_at      REAL,                     -- unix seconds, EXIF DateTimeOriginal else file mtime
    taken_source  TEXT,                     -- 'exif' or 'mtime'
    camera        TEXT,
    exif_json     TEXT,                     -- the few EXIF fields selection uses (exposure bias, mode, ...)
    phash         TEXT,                     -- 64-bit perceptual hash, 16 hex digits
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending','scored','error','deleted')),
    error         TEXT,
    composite     REAL,                     -- weighted, renormalised over the groups present
    coverage      TEXT,                     -- JSON list of the groups that contributed
    groups_json   TEXT,                     -- JSON {group: score}
    moment        INTEGER,
    cluster       INTEGER,
    first_seen    REAL NOT NULL,
    scored_at     REAL,
    updated_at    REAL NOT NULL
);
CREATE INDEX images_status ON images(status);
CREATE INDEX images_hash ON images(content_hash);
CREATE INDEX images_taken ON images(root, taken_at);
CREATE INDEX images_composite ON images(composite);
CREATE INDEX images_cluster ON images(moment, cluster);    -- a pick's siblings (dashboard, album)
CREATE INDEX images_updated ON images(updated_at);         -- what changed since the last selection run

CREATE TABLE scores (
    image_id      INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    model         TEXT NOT NULL,            -- scorer or model name, e.g. 'sharpness', 'musiq-spaq'
    task          TEXT NOT NULL,            -- group: aesthetic / technical / portrait
    raw           REAL,                     -- what the scorer measured, in its own unit
    normalised    REAL,                     -- 0..1, 1 = better
    model_version TEXT,
    scored_at     REAL NOT NULL,
    PRIMARY KEY (image_id, model)
) WITHOUT ROWID;
CREATE INDEX scores_model ON scores(model);

CREATE TABLE embeddings (
    image_id      INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    model         TEXT NOT NULL,
    dim           INTEGER NOT NULL,
    vector        BLOB NOT NULL,            -- float32, little-endian
    PRIMARY KEY (image_id, model)
) WITHOUT ROWID;

CREATE TABLE models (
    name          TEXT PRIMARY KEY,
    task          TEXT,
    framework     TEXT,
    enabled       INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('disabled','pending','fetching','cached','ready','failed','offline-unavailable')),
    source        TEXT,                     -- kind of the source that served it: local/tfhub/kaggle/hf/https/cache
    source_ref    TEXT,                     -- the URL, handle or path of that source
    cache_path    TEXT,
    version       TEXT,
    sha256        TEXT,
    bytes         INTEGER,
    load_seconds  REAL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    updated_at    REAL NOT NULL
);

CREATE TABLE model_events (
    id            INTEGER PRIMARY KEY,
    model         TEXT NOT NULL,
    at            REAL NOT NULL,
    kind          TEXT NOT NULL,            -- attempt, retry, skip, fallback, success, failure, load, offline
    source        TEXT,
    seconds       REAL,
    error_class   TEXT,
    message       TEXT
);
CREATE INDEX model_events_model ON model_events(model, at);

CREATE TABLE selection_runs (
    id            INTEGER PRIMARY KEY,
    trigger       TEXT NOT NULL,            -- start-up, schedule, new-photos, command, cli
    mode          TEXT,                     -- full or incremental
    settings      TEXT,                     -- fingerprint of the settings it ran with (a change forces a full run)
    started       REAL NOT NULL,
    finished      REAL,
    photos        INTEGER,
    moments       INTEGER,
    moments_recomputed INTEGER,
    clusters      INTEGER,
    picks         INTEGER,
    added         INTEGER,
    removed       INTEGER,
    error         TEXT
);

CREATE TABLE picks (                        -- the current album: one row per picked photo
    image_id      INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    run_id        INTEGER NOT NULL REFERENCES selection_runs(id),
    moment        INTEGER,
    cluster       INTEGER,
    rank          INTEGER,
    composite     REAL,
    reason        TEXT NOT NULL             -- JSON: group scores, coverage, decided_by, floors, manual
);
CREATE INDEX picks_order ON picks(moment, cluster, rank);  -- the album in display order

CREATE TABLE pick_changes (                 -- what each run added to and removed from the album
    run_id        INTEGER NOT NULL REFERENCES selection_runs(id),
    image_id      INTEGER NOT NULL,
    change        TEXT NOT NULL CHECK (change IN ('added','removed')),
    PRIMARY KEY (run_id, image_id)
) WITHOUT ROWID;

CREATE TABLE album_candidates (             -- per cluster, the photos it would put in the album;
    image_id      INTEGER PRIMARY KEY,      -- the size policy chooses picks among these
    moment        INTEGER NOT NULL,
    cluster       INTEGER NOT NULL,
    rank          INTEGER NOT NULL,
    composite     REAL,
    unit_score    REAL,                     -- the cluster's score when the album is cut to a size
    forced        INTEGER NOT NULL DEFAULT 0,   -- pinned: always in the album
    reason        TEXT NOT NULL
);
CREATE INDEX album_candidates_moment ON album_candidates(moment);

CREATE TABLE manual_choices (               -- a person's choice always wins
    image_id      INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    choice        TEXT NOT NULL CHECK (choice IN ('pin','reject')),
    origin        TEXT NOT NULL,            -- cli, dashboard, xmp
    at            REAL NOT NULL
);

CREATE TABLE xmp_written (                  -- what keepers last wrote to each sidecar
    sidecar       TEXT PRIMARY KEY,
    image_id      INTEGER NOT NULL,
    rating        INTEGER,                  -- the rating keepers wrote
    label         TEXT,                     -- the label keepers wrote
    written_at    REAL NOT NULL,
    mtime_ns      INTEGER,                  -- the sidecar's mtime when keepers last wrote or read it
    hand_rating   INTEGER                   -- a rating a person set by hand (wins; NULL = none)
);

CREATE TABLE commands (                     -- dashboard/CLI -> daemon
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('rescan','reselect','retry-model','pin','unpin','reject')),
    arg           TEXT,
    created       REAL NOT NULL,
    taken         REAL,
    done          REAL,
    result        TEXT,
    error         TEXT
);
CREATE INDEX commands_open ON commands(done);

CREATE TABLE telemetry (                    -- per-stage timings, aggregated per writer batch
    id            INTEGER PRIMARY KEY,
    at            REAL NOT NULL,
    stage         TEXT NOT NULL,            -- decode, <scorer name>, write, selection, ...
    count         INTEGER NOT NULL,
    total_seconds REAL NOT NULL,
    max_seconds   REAL NOT NULL
);
CREATE INDEX telemetry_stage ON telemetry(stage, at);

CREATE TABLE daemon (                       -- one row: the running daemon's heartbeat
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    pid           INTEGER,
    version       TEXT,
    state         TEXT,                     -- starting, ready, stopping, stopped
    started       REAL,
    heartbeat     REAL,
    queue_depth   INTEGER,
    photos_per_min REAL,
    watched_folders TEXT,                   -- JSON list of {path, mode}
    inotify_watches INTEGER,
    inotify_limit INTEGER,
    status_text   TEXT
);

CREATE TABLE log (                          -- recent warnings and errors, for the dashboard
    id            INTEGER PRIMARY KEY,
    at            REAL NOT NULL,
    level         TEXT NOT NULL,
    logger        TEXT NOT NULL,
    message       TEXT NOT NULL
);
"""

_V2 = """
ALTER TABLE images ADD COLUMN phash_version TEXT;  -- hashing.PHASH_VERSION of its phash; older ones are hashed again
"""

_V3 = """
CREATE TABLE image_counts (                 -- how many images have each status; the triggers below keep it exact,
    status        TEXT PRIMARY KEY,         -- so the dashboard reads four rows instead of counting a million
    n             INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO image_counts (status, n) VALUES ('pending', 0), ('scored', 0), ('error', 0), ('deleted', 0);
UPDATE image_counts SET n = (SELECT count(*) FROM images WHERE images.status = image_counts.status);
-- (an INSERT OR REPLACE into images would slip past the delete trigger: the writer uses UPDATE or an upsert)
CREATE TRIGGER image_counts_insert AFTER INSERT ON images BEGIN
    UPDATE image_counts SET n = n + 1 WHERE status = new.status;
END;
CREATE TRIGGER image_counts_delete AFTER DELETE ON images BEGIN
    UPDATE image_counts SET n = n - 1 WHERE status = old.status;
END;
CREATE TRIGGER image_counts_status AFTER UPDATE OF status ON images WHEN old.status IS NOT new.status BEGIN
    UPDATE image_counts SET n = n + CASE status WHEN new.status THEN 1 ELSE -1 END WHERE status IN (old.status, new.status);
END;
-- the album in the order its photos were taken (the dashboard's Album page, `keepers picks`):
-- the same expression as their ORDER BY, so they read it in order instead of sorting every pick
CREATE INDEX images_when ON images(coalesce(taken_at, mtime_ns / 1e9));
"""

_V4 = """
CREATE TABLE image_changes (                -- a number that moves whenever a photo comes, goes, or changes its
    id            INTEGER PRIMARY KEY CHECK (id = 1),   -- path, status, score or time: a reader that kept an answer
    n             INTEGER NOT NULL          -- about the photos (a search's matches) knows when it must ask again
);
INSERT INTO image_changes (id, n) VALUES (1, 0);
CREATE TRIGGER image_changes_insert AFTER INSERT ON images BEGIN
    UPDATE image_changes SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER image_changes_delete AFTER DELETE ON images BEGIN
    UPDATE image_changes SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER image_changes_update AFTER UPDATE OF path, status, composite, taken_at, mtime_ns ON images BEGIN
    UPDATE image_changes SET n = n + 1 WHERE id = 1;
END;
"""

_V5 = """
-- whether anything was scored or hashed by an older version (at every start) is a few index
-- probes instead of a read of every score: scores by model and version (its model prefix
-- serves what scores_model served), the scored photos by hash version
DROP INDEX IF EXISTS scores_model;
CREATE INDEX scores_model_version ON scores(model, model_version);
CREATE INDEX images_phash_version ON images(phash_version) WHERE status = 'scored';
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5]
#: the version that brought ``image_counts`` (and ``images_when``): a reader of an older database counts rows
COUNTS_SCHEMA_VERSION = 3
#: the version that brought ``image_changes``
CHANGES_SCHEMA_VERSION = 4
#: the version that brought the indexes that tell at once whether anything is outdated
PROBE_SCHEMA_VERSION = 5
SCHEMA_VERSION = len(MIGRATIONS)
