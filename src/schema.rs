// @generated automatically by Diesel CLI.

diesel::table! {
    users (id) {
        id -> Integer,
        issuer -> Text,
        sub -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        revoked_before -> Nullable<Timestamp>,
    }
}
