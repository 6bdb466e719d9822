//! `gitRepo`: a repository cloned on the host, shared into the guest over virtio-fs.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::git_command::{Git, GitOutcome};
use super::names::{redact_text, redact_url, relative_dir, repository_dir_name, virtiofs_tag};
use super::{GitRepoSource, GuestMount, GuestMountSource, PreparedVolume, Volume};
use super::{VolumeDriver, VolumeError, VolumeSource, VolumeType};

/// How long one git command may run by default.
pub const DEFAULT_GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// Serves `gitRepo` volumes with the `git` command: clones `repository` into
/// `group_dir/<volume>/<directory>` and checks out `revision` (a commit, branch or tag),
/// before the containers start. The guest sees `group_dir/<volume>` as a read-write
/// virtio-fs share. Release removes the clone.
///
/// Error messages name the repository with any `user:password@` removed.
#[derive(Debug, Clone)]
pub struct GitRepoDriver {
    git: Git,
}

impl GitRepoDriver {
    /// A driver running `program` (a path, or a name looked up on `PATH`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self { git: Git { program: program.into(), timeout: DEFAULT_GIT_TIMEOUT } }
    }

    /// Kills a git command that runs longer than `timeout` (default
    /// [`DEFAULT_GIT_TIMEOUT`]) and fails the volume.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.git.timeout = timeout;
        self
    }
}

impl Default for GitRepoDriver {
    fn default() -> Self {
        Self::new("git")
    }
}

impl VolumeDriver for GitRepoDriver {
    fn volume_type(&self) -> VolumeType {
        VolumeType::GitRepo
    }

    fn prepare(&self, group_dir: &Path, volume: &Volume) -> Result<PreparedVolume, VolumeError> {
        let VolumeSource::GitRepo(source) = &volume.source else {
            return Err(VolumeError::wrong_driver(self.volume_type(), volume));
        };
        let clone = CloneRequest::plan(&volume.name, source)?;
        let volume_dir = group_dir.join(&volume.name);
        remove_dir(&volume.name, &volume_dir)?;
        std::fs::create_dir_all(&volume_dir).map_err(|err| VolumeError::CreateVolumeDir {
            volume: volume.name.clone(),
            path: volume_dir.clone(),
            source: err,
        })?;
        if let Err(err) = clone.run(&self.git, &volume_dir) {
            // The clone error is what matters; a half clone left behind is removed with
            // the group directory anyway.
            let _ = remove_dir(&volume.name, &volume_dir);
            return Err(err);
        }
        Ok(PreparedVolume {
            volume_type: VolumeType::GitRepo,
            mount: GuestMount {
                name: volume.name.clone(),
                source: GuestMountSource::VirtioFs { tag: virtiofs_tag(&volume.name), host_dir: volume_dir },
                read_only: false,
            },
        })
    }

    fn release(&self, group_dir: &Path, volume: &PreparedVolume) -> Result<(), VolumeError> {
        remove_dir(volume.name(), &group_dir.join(volume.name()))
    }
}

/// A checked clone request.
struct CloneRequest<'a> {
    volume: &'a str,
    repository: &'a str,
    /// `repository` without credentials, for messages.
    shown: String,
    /// Relative to the volume's root; empty for the root itself.
    directory: PathBuf,
    revision: Option<&'a str>,
}

impl<'a> CloneRequest<'a> {
    fn plan(volume: &'a str, source: &'a GitRepoSource) -> Result<Self, VolumeError> {
        let repository = source.repository.as_str();
        let shown = redact_url(repository);
        let invalid_repo = |reason| VolumeError::InvalidRepository {
            volume: volume.to_owned(),
            repository: shown.clone(),
            reason,
        };
        if repository.is_empty() {
            return Err(invalid_repo("it is empty"));
        }
        if repository.starts_with('-') {
            return Err(invalid_repo("it starts with `-`"));
        }
        let directory = match source.directory.as_deref() {
            None | Some("") => repository_dir_name(repository)
                .map(PathBuf::from)
                .ok_or_else(|| invalid_repo("no directory name can be derived from it"))?,
            Some(dir) => relative_dir(dir).map_err(|reason| VolumeError::InvalidGitDirectory {
                volume: volume.to_owned(),
                directory: dir.to_owned(),
                reason,
            })?,
        };
        let revision = source.revision.as_deref();
        if let Some(rev) = revision {
            if rev.is_empty()
                || rev.starts_with('-')
                || rev.contains(|c: char| c.is_whitespace() || c.is_control())
            {
                return Err(VolumeError::InvalidGitRevision {
                    volume: volume.to_owned(),
                    revision: rev.to_owned(),
                });
            }
        }
        Ok(Self { volume, repository, shown, directory, revision })
    }

    /// Clones into `volume_dir/directory`, then checks out the revision, if any.
    fn run(&self, git: &Git, volume_dir: &Path) -> Result<(), VolumeError> {
        let target = volume_dir.join(&self.directory);
        let mut args: Vec<&OsStr> = vec!["clone".as_ref(), "--quiet".as_ref()];
        if self.revision.is_some() {
            args.push("--no-checkout".as_ref());
        }
        args.extend([OsStr::new("--"), self.repository.as_ref(), target.as_os_str()]);
        if let GitOutcome::Failure(detail) = self.git(git, None, &args)? {
            return Err(VolumeError::CloneRepository {
                volume: self.volume.to_owned(),
                repository: self.shown.clone(),
                detail: redact_text(&detail, self.repository),
            });
        }
        match self.revision {
            Some(revision) => self.checkout(git, &target, revision),
            None => Ok(()),
        }
    }

    /// Resolves `revision` as a tag, commit or local ref, then as a remote branch, and
    /// checks out that commit (detached HEAD).
    fn checkout(&self, git: &Git, repo: &Path, revision: &str) -> Result<(), VolumeError> {
        let candidates =
            [format!("{revision}^{{commit}}"), format!("refs/remotes/origin/{revision}^{{commit}}")];
        let mut commit = None;
        for candidate in &candidates {
            let args = ["rev-parse", "--verify", "--quiet", "--end-of-options", candidate];
            if let GitOutcome::Success(out) = self.git(git, Some(repo), &os(&args))? {
                commit = Some(out.trim().to_owned());
                break;
            }
        }
        let failed = |detail: String| VolumeError::CheckoutRevision {
            volume: self.volume.to_owned(),
            repository: self.shown.clone(),
            revision: revision.to_owned(),
            detail,
        };
        let commit = commit.ok_or_else(|| failed("no commit, branch or tag of that name".to_owned()))?;
        match self.git(git, Some(repo), &os(&["checkout", "--quiet", "--detach", &commit]))? {
            GitOutcome::Success(_) => Ok(()),
            GitOutcome::Failure(detail) => Err(failed(redact_text(&detail, self.repository))),
        }
    }

    fn git(&self, git: &Git, cwd: Option<&Path>, args: &[&OsStr]) -> Result<GitOutcome, VolumeError> {
        git.run(cwd, args).map_err(|source| VolumeError::RunGit {
            volume: self.volume.to_owned(),
            program: git.program.clone(),
            source,
        })
    }
}

/// Removes `dir` and everything in it; a missing directory is fine.
fn remove_dir(volume: &str, dir: &Path) -> Result<(), VolumeError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => {
            Err(VolumeError::RemoveVolumeDir { volume: volume.to_owned(), path: dir.to_owned(), source })
        }
    }
}

fn os<'a>(args: &'a [&'a str]) -> Vec<&'a OsStr> {
    args.iter().map(OsStr::new).collect()
}
