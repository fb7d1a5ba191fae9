CREATE TABLE users (
    id SERIAL PRIMARY KEY,
    sub TEXT NOT NULL UNIQUE CHECK (length(sub) > 0),
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
