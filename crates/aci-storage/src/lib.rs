//! # aci-storage — rootfs disks and volumes
//!
//! This crate will turn OCI layers into read-only root filesystem images and prepare the
//! group volumes: Azure-Files-style SMB shares, virtiofs host shares, emptyDir, secret and
//! gitRepo.
//!
//! State: empty until the images and volumes issues land.
//!
//! [`initramfs`]: write cpio newc archives (initramfs images).
//! [`rootfs`]: unpack OCI layers (whiteouts, hostile entries contained) and build erofs disks.
//!
//! [`volumes`]: the host side of group volumes (a driver registry keyed by volume type) and
//! the guest mount each becomes: emptyDir, secret, gitRepo, azureFile (CIFS), hostPath.

pub mod initramfs;
pub mod rootfs;
pub mod volumes;
