//! Resolving an image's `User` (`name`, `uid`, `uid:gid`, `name:group`) against the
//! container's own `/etc/passwd` and `/etc/group`.

use thiserror::Error;

/// The ids a container process runs with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserIds {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// Supplementary groups: every `/etc/group` entry listing the user by name.
    pub additional_gids: Vec<u32>,
    /// The home directory from `/etc/passwd` (for `HOME` when the environment has none).
    pub home: Option<String>,
}

/// The user could not be resolved.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UserError {
    /// A name is not in the container's `/etc/passwd`.
    #[error("user {0:?} is not in the image's /etc/passwd")]
    UnknownUser(String),
    /// A group name is not in the container's `/etc/group`.
    #[error("group {0:?} is not in the image's /etc/group")]
    UnknownGroup(String),
    /// The value is not `user[:group]`.
    #[error("user {0:?} is not of the form user[:group]")]
    Malformed(String),
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        Some(PasswdEntry {
            name: f.first()?,
            uid: f.get(2)?.parse().ok()?,
            gid: f.get(3)?.parse().ok()?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

/// `(name, gid, members)` of each `/etc/group` line.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let members = f.get(3).map(|m| m.split(',').filter(|s| !s.is_empty()).collect()).unwrap_or_default();
        Some((*f.first()?, f.get(2)?.parse().ok()?, members))
    })
}

/// Resolves `spec` (absent or empty: root) with the contents of the container's
/// `/etc/passwd` and `/etc/group` (empty strings when the image has none).
pub fn resolve(spec: Option<&str>, passwd: &str, group: &str) -> Result<UserIds, UserError> {
    let spec = spec.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("0");
    let (user, group_part) = match spec.split_once(':') {
        Some((u, g)) if !u.is_empty() && !g.is_empty() && !g.contains(':') => (u, Some(g)),
        Some(_) => return Err(UserError::Malformed(spec.to_owned())),
        None => (spec, None),
    };
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd)
            .find(|e| e.uid == uid)
            .map_or(PasswdEntry { name: "", uid, gid: 0, home: "" }, |e| e),
        Err(_) => passwd_entries(passwd)
            .find(|e| e.name == user)
            .ok_or_else(|| UserError::UnknownUser(user.to_owned()))?,
    };
    let gid = match group_part {
        None => entry.gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_entries(group)
                .find(|(name, _, _)| *name == g)
                .map(|(_, gid, _)| gid)
                .ok_or_else(|| UserError::UnknownGroup(g.to_owned()))?,
        },
    };
    let mut additional_gids: Vec<u32> = if entry.name.is_empty() {
        Vec::new()
    } else {
        group_entries(group)
            .filter(|(_, _, members)| members.contains(&entry.name))
            .map(|(_, gid, _)| gid)
            .filter(|g| *g != gid)
            .collect()
    };
    additional_gids.dedup();
    let home = (!entry.home.is_empty()).then(|| entry.home.to_owned());
    Ok(UserIds { uid: entry.uid, gid, additional_gids, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n\
                          app:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\napp:x:1000:\nstaff:x:50:app,www\nvideo:x:44:app\n";

    #[test]
    fn names_and_ids_resolve_against_the_image_files() {
        let root = resolve(None, PASSWD, GROUP).unwrap();
        assert_eq!((root.uid, root.gid, root.home.as_deref()), (0, 0, Some("/root")));
        let app = resolve(Some("app"), PASSWD, GROUP).unwrap();
        assert_eq!((app.uid, app.gid), (1000, 1000));
        assert_eq!(app.additional_gids, vec![50, 44]);
        assert_eq!(resolve(Some("33"), PASSWD, GROUP).unwrap().gid, 33);
        assert_eq!(resolve(Some("www:staff"), PASSWD, GROUP).unwrap().gid, 50);
        let ids = resolve(Some("4242:77"), PASSWD, GROUP).unwrap();
        assert_eq!((ids.uid, ids.gid, ids.home), (4242, 77, None));
        assert_eq!(resolve(Some("4242"), "", "").unwrap().gid, 0);
    }

    #[test]
    fn unknown_names_and_malformed_values_are_named() {
        assert_eq!(resolve(Some("nobody"), PASSWD, GROUP), Err(UserError::UnknownUser("nobody".into())));
        assert_eq!(resolve(Some("app:wheel"), PASSWD, GROUP), Err(UserError::UnknownGroup("wheel".into())));
        assert_eq!(resolve(Some("app:"), PASSWD, GROUP), Err(UserError::Malformed("app:".into())));
        assert!(resolve(Some("a:b:c"), PASSWD, GROUP).is_err());
    }
}
