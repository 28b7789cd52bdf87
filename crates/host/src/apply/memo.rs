//! sha256 of each distinct file contents, computed once.

use std::collections::HashMap;
use std::sync::Arc;

use super::{FileState, Manifest};
use routegen_render::output::OutputTree;

/// Above this many bytes to hash, the misses are hashed on rayon's pool.
const PARALLEL_BYTES: usize = 4 << 20;

/// Address and length of a shared allocation.
type ArcKey = (usize, usize);

fn arc_key(bytes: &Arc<[u8]>) -> ArcKey {
    (Arc::as_ptr(bytes) as *const u8 as usize, bytes.len())
}

/// sha256 of the contents of the newest tree's files, keyed by the address
/// (and length) of their shared allocation ([`routegen_render::output::OutputFile`]'s
/// `Arc`). Each entry holds a clone of its `Arc`, so the allocation, and
/// with it the address, lives as long as the entry: an address never names
/// two different contents, and contents behind an `Arc` never change.
/// Two allocations with equal bytes are two entries with the same hash.
#[derive(Debug, Default)]
pub(crate) struct HashMemo {
    entries: HashMap<ArcKey, (Arc<[u8]>, [u8; 32])>,
}

/// What one [`HashMemo::manifest`] call hashed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hashed {
    pub files: usize,
    pub bytes: u64,
}

impl HashMemo {
    /// sha256 and secret flag of every file of `tree`. Afterwards the memo
    /// holds exactly the allocations `tree` uses: entries of older trees
    /// are dropped.
    pub(crate) fn manifest(&mut self, tree: &OutputTree) -> (Manifest, Hashed) {
        let mut next: HashMap<ArcKey, (Arc<[u8]>, [u8; 32])> = HashMap::with_capacity(tree.len());
        let mut misses: Vec<&Arc<[u8]>> = Vec::new();
        for file in tree.values() {
            let key = arc_key(&file.contents);
            if next.contains_key(&key) {
                continue;
            }
            match self.entries.remove(&key) {
                Some(entry) => {
                    next.insert(key, entry);
                }
                None => {
                    // Placeholder hash, filled in below.
                    next.insert(key, (file.contents.clone(), [0; 32]));
                    misses.push(&file.contents);
                }
            }
        }
        let hashed = Hashed {
            files: misses.len(),
            bytes: misses.iter().map(|b| b.len() as u64).sum(),
        };
        for (bytes, hash) in misses.iter().zip(sha256_all(&misses)) {
            if let Some(entry) = next.get_mut(&arc_key(bytes)) {
                entry.1 = hash;
            }
        }
        self.entries = next;
        let manifest = tree
            .iter()
            .map(|(path, file)| {
                let hash = self.entries[&arc_key(&file.contents)].1;
                (
                    path.clone(),
                    FileState {
                        hash,
                        secret: file.secret,
                    },
                )
            })
            .collect();
        (manifest, hashed)
    }

    /// Number of distinct allocations remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// sha256 of each input, in order; on rayon's pool when there is much to hash.
fn sha256_all(inputs: &[&Arc<[u8]>]) -> Vec<[u8; 32]> {
    let total: usize = inputs.iter().map(|b| b.len()).sum();
    if total < PARALLEL_BYTES || inputs.len() < 2 {
        return inputs.iter().map(|b| openssl::sha::sha256(b)).collect();
    }
    use rayon::prelude::*;
    inputs.par_iter().map(|b| openssl::sha::sha256(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use routegen_render::output::OutputFile;

    #[test]
    fn apply_memo_hashes_each_allocation_once_and_forgets_old_ones() {
        let shared: Arc<[u8]> = Arc::from(b"same bytes".to_vec());
        let mut tree = OutputTree::new();
        tree.insert("a".into(), OutputFile::shared(shared.clone(), false));
        tree.insert("b".into(), OutputFile::shared(shared.clone(), true));
        // Equal bytes in another allocation: its own entry, same hash.
        tree.insert("c".into(), OutputFile::public(b"same bytes".to_vec()));
        tree.insert("d".into(), OutputFile::public(b"other".to_vec()));
        let mut memo = HashMemo::default();
        let (m, hashed) = memo.manifest(&tree);
        assert_eq!(hashed.files, 3);
        assert_eq!(memo.len(), 3);
        let want = openssl::sha::sha256(b"same bytes");
        assert_eq!(m["a"].hash, want);
        assert_eq!(m["b"].hash, want);
        assert_eq!(m["c"].hash, want);
        assert!(!m["a"].secret && m["b"].secret);
        assert_eq!(m["d"].hash, openssl::sha::sha256(b"other"));

        // Same allocations again: nothing hashed.
        let (again, hashed) = memo.manifest(&tree);
        assert_eq!(hashed.files, 0);
        assert_eq!(again, m);

        // One file replaced: only it is hashed; the old entry is dropped.
        tree.insert("d".into(), OutputFile::public(b"changed".to_vec()));
        let (m2, hashed) = memo.manifest(&tree);
        assert_eq!(hashed.files, 1);
        assert_eq!(hashed.bytes, 7);
        assert_eq!(m2["d"].hash, openssl::sha::sha256(b"changed"));
        assert_eq!(memo.len(), 3);
        // The memo holds its own clone: the shared Arc is still alive even
        // if the tree is dropped.
        drop(tree);
        assert_eq!(Arc::strong_count(&shared), 2);
    }

    #[test]
    fn apply_memo_parallel_hashing_matches() {
        let inputs: Vec<Arc<[u8]>> = (0..40u8)
            .map(|i| Arc::from(vec![i; 200 * 1024 + i as usize]))
            .collect();
        let refs: Vec<&Arc<[u8]>> = inputs.iter().collect();
        let got = sha256_all(&refs);
        for (b, h) in inputs.iter().zip(got) {
            assert_eq!(h, openssl::sha::sha256(b));
        }
    }
}
