//! Boot step (part of loading): the Intel MultiProcessor Specification 1.4 table.
//!
//! Without ACPI this is how Linux learns the vCPUs' APIC ids, the IOAPIC and how ISA IRQs
//! reach it. With it the guest uses the IOAPIC, x2APIC and the TSC-deadline timer instead of
//! the (exit-heavy) PIC, and brings up every vCPU. The table lives at the start of the EBDA,
//! where Linux scans for the floating pointer.

use crate::layout;

/// APIC version reported for each vCPU's local APIC.
const LAPIC_VERSION: u8 = 0x14;
/// IOAPIC version.
const IOAPIC_VERSION: u8 = 0x11;
/// Number of IOAPIC pins (KVM's in-kernel IOAPIC has 24).
const IOAPIC_PINS: u8 = 24;
/// CPU signature: family 6.
const CPU_SIGNATURE: u32 = 0x600;
/// CPU feature flags: FPU and APIC present.
const CPU_FEATURES: u32 = 0x201;
/// Entry types.
const ENTRY_CPU: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;
/// Interrupt types.
const INT_TYPE_INT: u8 = 0;
const INT_TYPE_NMI: u8 = 1;
const INT_TYPE_EXTINT: u8 = 3;
/// Size of the floating pointer structure.
const FLOATING_POINTER_LEN: usize = 16;
/// Size of the configuration table header.
const HEADER_LEN: usize = 44;

/// Why the MP table could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MpTableError {
    /// Too many vCPUs for APIC ids below the IOAPIC's.
    #[error("{0} vCPUs do not fit in the MP table")]
    TooManyCpus(u8),
}

/// Byte checksum making the sum of `bytes` plus the result zero.
fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b)).wrapping_neg()
}

/// The MP table (floating pointer followed by the configuration table) for `vcpus` vCPUs,
/// to be written at guest-physical `base`.
pub fn build_mptable(base: u64, vcpus: u8) -> Result<Vec<u8>, MpTableError> {
    if vcpus == 0 || vcpus >= 0xfe {
        return Err(MpTableError::TooManyCpus(vcpus));
    }
    let ioapic_id = vcpus + 1;
    let mut entries = Vec::new();
    let mut count: u16 = 0;
    for id in 0..vcpus {
        let flags = if id == 0 { 0b11 } else { 0b01 }; // enabled, bootstrap processor
        entries.extend_from_slice(&[ENTRY_CPU, id, LAPIC_VERSION, flags]);
        entries.extend_from_slice(&CPU_SIGNATURE.to_le_bytes());
        entries.extend_from_slice(&CPU_FEATURES.to_le_bytes());
        entries.extend_from_slice(&[0; 8]);
        count += 1;
    }
    entries.extend_from_slice(&[ENTRY_BUS, 0]);
    entries.extend_from_slice(b"ISA   ");
    entries.extend_from_slice(&[ENTRY_IOAPIC, ioapic_id, IOAPIC_VERSION, 1]);
    entries.extend_from_slice(&layout::IOAPIC_ADDR.to_le_bytes());
    count += 2;
    for irq in 0..IOAPIC_PINS {
        // type, interrupt type, flags (conforming polarity and trigger), bus, bus irq,
        // destination IOAPIC, destination pin.
        entries.extend_from_slice(&[ENTRY_IO_INTERRUPT, INT_TYPE_INT, 0, 0, 0, irq, ioapic_id, irq]);
        count += 1;
    }
    // ExtINT to LINT0 of the BSP, NMI to LINT1 of every local APIC.
    entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, INT_TYPE_EXTINT, 0, 0, 0, 0, 0, 0]);
    entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, INT_TYPE_NMI, 0, 0, 0, 0, 0xff, 1]);
    count += 2;

    let table_len = HEADER_LEN + entries.len();
    let table_len_u16 = u16::try_from(table_len).map_err(|_| MpTableError::TooManyCpus(vcpus))?;
    let mut table = Vec::with_capacity(table_len);
    table.extend_from_slice(b"PCMP");
    table.extend_from_slice(&table_len_u16.to_le_bytes());
    table.push(4); // spec revision 1.4
    table.push(0); // checksum, below
    table.extend_from_slice(b"ACI     "); // OEM id
    table.extend_from_slice(b"MICROVM     "); // product id
    table.extend_from_slice(&0u32.to_le_bytes()); // OEM table pointer
    table.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
    table.extend_from_slice(&count.to_le_bytes());
    table.extend_from_slice(&layout::LAPIC_ADDR.to_le_bytes());
    table.extend_from_slice(&[0; 4]); // extended table length, checksum, reserved
    table.extend_from_slice(&entries);
    table[7] = checksum(&table);

    let table_addr = base + FLOATING_POINTER_LEN as u64;
    let table_addr = u32::try_from(table_addr).map_err(|_| MpTableError::TooManyCpus(vcpus))?;
    let mut out = Vec::with_capacity(FLOATING_POINTER_LEN + table_len);
    out.extend_from_slice(b"_MP_");
    out.extend_from_slice(&table_addr.to_le_bytes());
    out.push(1); // length in 16-byte units
    out.push(4); // spec revision
    out.push(0); // checksum, below
    out.extend_from_slice(&[0; 5]); // feature bytes: 0 = configuration table present
    out[10] = checksum(&out);
    out.extend_from_slice(&table);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b))
    }

    #[test]
    fn table_checksums_and_counts_are_right() {
        let table = build_mptable(layout::EBDA_ADDR, 2).unwrap();
        assert_eq!(&table[..4], b"_MP_");
        assert_eq!(sum(&table[..16]), 0);
        let ptr = u32::from_le_bytes([table[4], table[5], table[6], table[7]]);
        assert_eq!(u64::from(ptr), layout::EBDA_ADDR + 16);
        let config = &table[16..];
        assert_eq!(&config[..4], b"PCMP");
        let len = usize::from(u16::from_le_bytes([config[4], config[5]]));
        assert_eq!(len, config.len());
        assert_eq!(sum(config), 0);
        let count = u16::from_le_bytes([config[34], config[35]]);
        assert_eq!(count, 2 + 2 + 24 + 2);
        assert_eq!(len, 44 + 2 * 20 + 8 + 8 + 24 * 8 + 2 * 8);
        // The second CPU entry is an enabled application processor with APIC id 1.
        assert_eq!(&config[44 + 20..44 + 24], &[0, 1, LAPIC_VERSION, 0b01]);
    }

    #[test]
    fn table_fits_below_the_bios_area() {
        let table = build_mptable(layout::EBDA_ADDR, crate::config::MAX_VCPUS).unwrap();
        assert!(layout::EBDA_ADDR + table.len() as u64 <= 0xa0000);
        assert!(build_mptable(layout::EBDA_ADDR, 0).is_err());
    }
}
