//! Extracting a dataset's files from a verified `.tar.gz` archive (the `tar` crate reads it).
//!
//! Only the members the catalog names are written, each under its dataset file name (never
//! under a path taken from the archive), first to a temporary name and renamed only once the
//! whole archive has been read, every member found and every published member MD5 matched: a
//! corrupt or unacceptable archive leaves nothing behind and the folder as it was. A member whose path leaves the archive's top folder (absolute, `..`), a
//! link or a device refuses the whole archive.

use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::DataError;
use crate::catalog::{Archive, RemoteFile, hex};

/// One extracted file: its name in the dataset's folder, its SHA-256 and MD5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// File name in the dataset's folder.
    pub name: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// MD5 of its bytes, hex.
    pub md5: String,
}

/// Extracts `spec`'s members of the gzip-compressed tar `archive` into `dest`, checking each
/// against the published MD5 that `files` gives it, if any.
pub fn unpack(archive: &Path, spec: &Archive, files: &[RemoteFile], dest: &Path) -> Result<Vec<Extracted>, DataError> {
    let mut temps: Vec<(PathBuf, PathBuf)> = Vec::new();
    let extracted = extract_to_temps(archive, spec, dest, &mut temps).and_then(|extracted| {
        for x in &extracted {
            if let Some(expected) = files.iter().find(|f| f.name == x.name).and_then(|f| f.md5)
                && x.md5 != expected
            {
                return Err(DataError::new(
                    archive,
                    format!("MD5 of member {} is {}, expected {expected}; nothing was extracted", x.name, x.md5),
                ));
            }
        }
        Ok(extracted)
    });
    let renamed = extracted.and_then(|extracted| {
        for (temp, target) in &temps {
            fs::rename(temp, target)
                .map_err(|e| DataError::new(target, format!("cannot rename {}: {e}", temp.display())))?;
        }
        Ok(extracted)
    });
    // Whatever went wrong, no temporary file stays (a renamed one is gone from its old name).
    for (temp, _) in &temps {
        fs::remove_file(temp).ok();
    }
    renamed
}

/// The top folder every member shares (`cifar-10-batches-bin`), from the catalog's members.
fn top_folder(spec: &Archive) -> Option<&str> {
    spec.members.first().and_then(|(m, _)| m.split('/').next())
}

fn extract_to_temps(
    archive: &Path,
    spec: &Archive,
    dest: &Path,
    temps: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<Vec<Extracted>, DataError> {
    let bad = |problem: String| DataError::new(archive, problem);
    let file = fs::File::open(archive).map_err(|e| bad(format!("cannot open: {e}")))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let top = top_folder(spec);
    let mut extracted: Vec<Extracted> = Vec::new();
    for entry in tar.entries().map_err(|e| bad(format!("not a tar archive: {e}")))? {
        let mut entry = entry.map_err(|e| bad(format!("corrupt archive: {e}")))?;
        let path = entry.path().map_err(|e| bad(format!("a member's name is unreadable: {e}")))?.into_owned();
        let shown = path.display().to_string();
        let inside = path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
            && path.components().find(|c| matches!(c, Component::Normal(_))).and_then(|c| c.as_os_str().to_str())
                == top;
        let kind = entry.header().entry_type();
        if !inside || !(kind.is_file() || kind.is_dir()) {
            return Err(bad(format!(
                "unexpected member '{shown}' ({kind:?}): only files under {}/ are accepted; nothing was extracted",
                top.unwrap_or("?")
            )));
        }
        let member = path.components().filter(|c| !matches!(c, Component::CurDir)).collect::<PathBuf>();
        let Some((_, name)) = spec.members.iter().find(|(m, _)| Path::new(m) == member) else { continue };
        if extracted.iter().any(|x| x.name == *name) {
            return Err(bad(format!("member '{shown}' appears twice; nothing was extracted")));
        }
        let target = dest.join(name);
        let temp = dest.join(format!(".{name}.part-{}", std::process::id()));
        temps.push((temp.clone(), target));
        let mut out = fs::File::create(&temp).map_err(|e| DataError::new(&temp, format!("cannot create: {e}")))?;
        let (mut sha, mut md5) = (Sha256::new(), md5::Md5::new());
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let got = entry.read(&mut chunk).map_err(|e| bad(format!("corrupt archive in '{shown}': {e}")))?;
            if got == 0 {
                break;
            }
            sha.update(&chunk[..got]);
            md5.update(&chunk[..got]);
            out.write_all(&chunk[..got]).map_err(|e| DataError::new(&temp, format!("cannot write: {e}")))?;
        }
        out.sync_all().map_err(|e| DataError::new(&temp, format!("cannot write: {e}")))?;
        extracted.push(Extracted { name: name.to_string(), sha256: hex(&sha.finalize()), md5: hex(&md5.finalize()) });
    }
    let missing: Vec<&str> =
        spec.members.iter().filter(|(_, n)| !extracted.iter().any(|x| x.name == *n)).map(|(m, _)| *m).collect();
    if !missing.is_empty() {
        return Err(bad(format!("members missing from the archive: {}; nothing was extracted", missing.join(", "))));
    }
    Ok(extracted)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `.tar.gz` of `(path, bytes)` members; a path is written into the header verbatim, so a
    /// test can make a hostile archive.
    pub fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for (path, bytes) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            let name = path.as_bytes();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_cksum();
            builder.append(&header, *bytes).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    const SPEC: Archive = Archive {
        name: "toy.tar.gz",
        md5: "unused here",
        sha256: None,
        members: &[("toy/a.bin", "a.bin"), ("toy/b.txt", "b.txt")],
    };

    #[test]
    fn only_the_named_members_are_extracted_under_their_own_names() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("toy.tar.gz");
        fs::write(&archive, tar_gz(&[("toy/a.bin", b"abc"), ("toy/readme.html", b"skip me"), ("toy/b.txt", b"")]))
            .unwrap();
        let dest = dir.path().join("out");
        fs::create_dir(&dest).unwrap();
        let got = unpack(&archive, &SPEC, &[], &dest).unwrap();
        assert_eq!(got[0].name, "a.bin");
        // SHA-256 and MD5 of "abc" (FIPS 180-2 and RFC 1321 test vectors).
        assert_eq!(got[0].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(got[0].md5, "900150983cd24fb0d6963f7d28e17f72");
        let mut names: Vec<String> =
            fs::read_dir(&dest).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["a.bin", "b.txt"]);
        assert_eq!(fs::read(dest.join("a.bin")).unwrap(), b"abc");
    }

    #[test]
    fn traversal_missing_members_and_corruption_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out");
        fs::create_dir(&dest).unwrap();
        let archive = dir.path().join("toy.tar.gz");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (tar_gz(&[("toy/a.bin", b"abc"), ("../x", b"evil"), ("toy/b.txt", b"")]), "unexpected member '../x'"),
            (tar_gz(&[("toy/a.bin", b"abc"), ("toy/../../x", b"evil")]), "unexpected member 'toy/../../x'"),
            (tar_gz(&[("toy/a.bin", b"abc"), ("/etc/x", b"evil")]), "unexpected member '/etc/x'"),
            (tar_gz(&[("toy/a.bin", b"abc"), ("other/b.txt", b"")]), "unexpected member 'other/b.txt'"),
            (tar_gz(&[("toy/a.bin", b"abc")]), "members missing from the archive: toy/b.txt"),
        ];
        for (bytes, needle) in cases {
            fs::write(&archive, &bytes).unwrap();
            let err = unpack(&archive, &SPEC, &[], &dest).unwrap_err();
            assert!(err.problem.contains(needle), "{err}");
            assert_eq!(fs::read_dir(&dest).unwrap().count(), 0, "nothing left after: {err}");
        }
        // A truncated archive.
        let good = tar_gz(&[("toy/a.bin", &[7u8; 100_000]), ("toy/b.txt", b"")]);
        fs::write(&archive, &good[..good.len() / 2]).unwrap();
        let err = unpack(&archive, &SPEC, &[], &dest).unwrap_err();
        assert!(err.problem.contains("corrupt archive"), "{err}");
        assert_eq!(fs::read_dir(&dest).unwrap().count(), 0);
    }
}
