//! An IPv4 pod-CIDR allocator: carves the cluster CIDR into blocks of one
//! mask size and hands them out, lowest free first after the last one given,
//! with occupy/release so it can be rebuilt from existing nodes.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Why a CIDR or an allocator configuration is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidrError {
    #[error("{0:?} is not an IPv4 CIDR (a.b.c.d/n)")]
    Parse(String),
    #[error("node CIDR mask /{mask} does not fit cluster CIDR {cluster} (want /{min}..=/30 and at most 2^20 blocks)")]
    Mask { cluster: String, mask: u8, min: u8 },
}

/// An IPv4 network: base address (host bits zero) and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let bad = || CidrError::Parse(s.to_string());
        let (ip, len) = s.trim().split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = len.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Cidr {
            base: u32::from(ip) & mask_bits(prefix),
            prefix,
        })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

fn mask_bits(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// Hands out `/mask` blocks of a cluster CIDR.
#[derive(Debug)]
pub struct Allocator {
    cluster: Cidr,
    mask: u8,
    count: u32,
    used: BTreeSet<u32>,
    next: u32,
}

impl Allocator {
    pub fn new(cluster: &str, mask: u8) -> Result<Allocator, CidrError> {
        let c = Cidr::parse(cluster)?;
        if mask < c.prefix || mask > 30 || mask - c.prefix > 20 {
            return Err(CidrError::Mask {
                cluster: c.to_string(),
                mask,
                min: c.prefix,
            });
        }
        Ok(Allocator {
            cluster: c,
            mask,
            count: 1 << (mask - c.prefix),
            used: BTreeSet::new(),
            next: 0,
        })
    }

    /// How many blocks exist, and how many are taken.
    pub fn capacity(&self) -> (u32, usize) {
        (self.count, self.used.len())
    }

    fn block(&self, i: u32) -> Cidr {
        Cidr {
            base: self.cluster.base + (i << (32 - u32::from(self.mask))),
            prefix: self.mask,
        }
    }

    /// The block index of `cidr`, if it is one of ours.
    fn index_of(&self, cidr: &str) -> Option<u32> {
        let c = Cidr::parse(cidr).ok()?;
        let inside = c.base & mask_bits(self.cluster.prefix) == self.cluster.base;
        (c.prefix == self.mask && inside)
            .then(|| (c.base - self.cluster.base) >> (32 - u32::from(self.mask)))
    }

    /// Marks a block as taken (a node already has it); false when not ours.
    pub fn occupy(&mut self, cidr: &str) -> bool {
        match self.index_of(cidr) {
            Some(i) => {
                self.used.insert(i);
                true
            }
            None => false,
        }
    }

    /// Frees a block.
    pub fn release(&mut self, cidr: &str) {
        if let Some(i) = self.index_of(cidr) {
            self.used.remove(&i);
        }
    }

    /// Forgets every allocation (before rebuilding from the nodes).
    pub fn clear(&mut self) {
        self.used.clear();
        self.next = 0;
    }

    /// The next free block, or None when the range is exhausted.
    pub fn allocate(&mut self) -> Option<String> {
        for k in 0..self.count {
            let i = (self.next + k) % self.count;
            if !self.used.contains(&i) {
                self.used.insert(i);
                self.next = (i + 1) % self.count;
                return Some(self.block(i).to_string());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_distinct_blocks_in_order() {
        let mut a = Allocator::new("10.42.0.0/16", 24).expect("allocator");
        assert_eq!(a.allocate().as_deref(), Some("10.42.0.0/24"));
        assert_eq!(a.allocate().as_deref(), Some("10.42.1.0/24"));
        assert_eq!(a.capacity(), (256, 2));
    }

    #[test]
    fn rebuilt_allocator_skips_occupied_blocks_and_reuses_released_ones() {
        let mut a = Allocator::new("10.42.0.0/16", 24).expect("allocator");
        assert!(a.occupy("10.42.0.0/24"));
        assert!(a.occupy("10.42.2.0/24"));
        assert!(!a.occupy("10.43.0.0/24"), "outside the cluster CIDR");
        assert!(!a.occupy("10.42.3.0/25"), "wrong size");
        assert_eq!(a.allocate().as_deref(), Some("10.42.1.0/24"));
        assert_eq!(a.allocate().as_deref(), Some("10.42.3.0/24"));
        a.release("10.42.0.0/24");
        a.clear();
        assert_eq!(a.allocate().as_deref(), Some("10.42.0.0/24"));
    }

    #[test]
    fn exhaustion_is_reported_and_release_frees_a_block() {
        let mut a = Allocator::new("10.0.0.0/30", 30).expect("allocator");
        let one = a.allocate().expect("one block");
        assert_eq!(one, "10.0.0.0/30");
        assert_eq!(a.allocate(), None);
        a.release(&one);
        assert_eq!(a.allocate().as_deref(), Some("10.0.0.0/30"));
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert!(Allocator::new("10.42.0.0/16", 8).is_err());
        assert!(Allocator::new("10.42.0.0/16", 31).is_err());
        assert!(Allocator::new("fd00::/64", 80).is_err());
        assert!(Allocator::new("10.42.0.0", 24).is_err());
        assert_eq!(
            Cidr::parse("10.42.7.9/16").map(|c| c.to_string()),
            Ok("10.42.0.0/16".into())
        );
    }
}
