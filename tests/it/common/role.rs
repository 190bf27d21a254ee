//! A PostgreSQL login role made for one test on the archive's server, with
//! the privileges the test grants it, dropped afterwards with everything it
//! was granted.

use super::Archive;

/// The password of every role made here (the servers listen on loopback).
const PASSWORD: &str = "role-of-a-test";

pub struct Role {
    name: String,
    /// The archive's URL as this role.
    pub url: String,
}

impl Role {
    /// Makes login role `name` (dropped first, should a failed run have
    /// left it) and grants it each of `grants`: what `GRANT … TO` takes,
    /// such as `SELECT ON ALL TABLES IN SCHEMA public`.
    pub async fn create(archive: &Archive, name: &str, grants: &[&str]) -> Role {
        let mut statements = vec![
            format!("DROP ROLE IF EXISTS {name}"),
            format!("CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'"),
        ];
        statements.extend(
            grants
                .iter()
                .map(|grant| format!("GRANT {grant} TO {name}")),
        );
        archive
            .execute(&statements.iter().map(String::as_str).collect::<Vec<_>>())
            .await;
        let mut url = reqwest::Url::parse(&archive.url).expect("the archive's URL");
        url.set_username(name).expect("a user in the URL");
        url.set_password(Some(PASSWORD))
            .expect("a password in the URL");
        Role {
            name: name.to_owned(),
            url: url.to_string(),
        }
    }

    /// Revokes what the role was granted and drops it.
    pub async fn drop_role(self, archive: &Archive) {
        archive
            .execute(&[
                &format!("DROP OWNED BY {}", self.name),
                &format!("DROP ROLE {}", self.name),
            ])
            .await;
    }
}
