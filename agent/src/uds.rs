//! Owner-only Unix sockets: the socket is bound under a temporary name, made 0600, then renamed
//! into place, so no other user ever sees it with looser permissions.

use std::{
    os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt},
    path::{Path, PathBuf},
};

use tokio::net::UnixListener;

use crate::error::ConfigError;

/// A bound listener that removes its socket file when dropped.
#[derive(Debug)]
pub struct OwnedSocket {
    pub listener: UnixListener,
    guard: SocketGuard,
}

/// Removes the socket file on drop.
#[derive(Debug)]
pub struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl OwnedSocket {
    /// Splits into the listener and the guard that removes the file.
    pub fn into_parts(self) -> (UnixListener, SocketGuard) {
        (self.listener, self.guard)
    }
}

/// Binds `path` with mode 0600. A stale socket file is replaced; a live one (another SDS server,
/// e.g. SPIRE) or a non-socket file is an error.
pub fn bind_owner_only(path: &Path) -> Result<OwnedSocket, ConfigError> {
    let err = |reason: String| ConfigError::Socket { path: path.to_path_buf(), reason };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(err("exists and is not a socket".into()));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(err("another server is already listening".into()));
        }
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| err("has no file name".into()))?;
    if !dir.exists() {
        // Like the emptyDir Istio mounts for the socket: created owner-only.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| err(format!("create {}: {e}", dir.display())))?;
    }
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(|e| err(format!("bind: {e}")))?;
    let tmp_guard = SocketGuard(tmp.clone());
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| err(format!("chmod: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| err(format!("rename into place: {e}")))?;
    std::mem::forget(tmp_guard);
    Ok(OwnedSocket { listener, guard: SocketGuard(path.to_path_buf()) })
}

/// A gRPC channel over the Unix socket at `path` (for `agent wait` and tests).
pub async fn connect_channel(path: &Path) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let path = path.to_path_buf();
    tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: tonic::codegen::http::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn owner_only_and_replaces_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let s = bind_owner_only(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Live: refused.
        assert!(bind_owner_only(&path).is_err());
        // Stale (listener gone, file left behind): replaced.
        let (listener, guard) = s.into_parts();
        drop(listener);
        std::mem::forget(guard);
        assert!(path.exists());
        let s2 = bind_owner_only(&path).unwrap();
        drop(s2);
        assert!(!path.exists(), "socket removed on drop");
        std::fs::write(&path, b"x").unwrap();
        assert!(bind_owner_only(&path).is_err(), "regular file is not clobbered");
        let nested = dir.path().join("a/b/socket");
        let _s3 = bind_owner_only(&nested).unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("a/b")).unwrap().permissions().mode() & 0o777, 0o700);
    }
}
