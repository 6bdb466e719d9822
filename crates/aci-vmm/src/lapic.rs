//! Boot step (per vCPU): local APIC LINT pins, as a PC's BIOS leaves them: LINT0 takes the
//! PIC's interrupts (ExtINT), LINT1 takes NMIs.

use kvm_bindings::kvm_lapic_state;

/// LVT LINT0 register offset.
const APIC_LVT0: usize = 0x350;
/// LVT LINT1 register offset.
const APIC_LVT1: usize = 0x360;
/// Delivery mode ExtINT.
const DELIVERY_EXTINT: u32 = 0b111;
/// Delivery mode NMI.
const DELIVERY_NMI: u32 = 0b100;

/// Why the LAPIC could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum LapicError {
    /// KVM_GET_LAPIC failed.
    #[error("could not read the vCPU's local APIC")]
    Get(#[source] kvm_ioctls::Error),
    /// KVM_SET_LAPIC failed.
    #[error("could not set the vCPU's local APIC")]
    Set(#[source] kvm_ioctls::Error),
}

fn read_reg(state: &kvm_lapic_state, offset: usize) -> u32 {
    let mut bytes = [0u8; 4];
    for (b, r) in bytes.iter_mut().zip(&state.regs[offset..offset + 4]) {
        *b = *r as u8;
    }
    u32::from_le_bytes(bytes)
}

fn write_reg(state: &mut kvm_lapic_state, offset: usize, value: u32) {
    for (r, b) in state.regs[offset..offset + 4].iter_mut().zip(value.to_le_bytes()) {
        *r = b as _;
    }
}

fn with_delivery_mode(reg: u32, mode: u32) -> u32 {
    (reg & !0x700) | (mode << 8)
}

/// Sets LINT0 to ExtINT and LINT1 to NMI in `state`.
pub fn set_lint_modes(state: &mut kvm_lapic_state) {
    let lvt0 = read_reg(state, APIC_LVT0);
    write_reg(state, APIC_LVT0, with_delivery_mode(lvt0, DELIVERY_EXTINT));
    let lvt1 = read_reg(state, APIC_LVT1);
    write_reg(state, APIC_LVT1, with_delivery_mode(lvt1, DELIVERY_NMI));
}

/// Configures LINT0/LINT1 of `vcpu`'s in-kernel LAPIC.
pub fn configure_lapic(vcpu: &kvm_ioctls::VcpuFd) -> Result<(), LapicError> {
    let mut state = vcpu.get_lapic().map_err(LapicError::Get)?;
    set_lint_modes(&mut state);
    vcpu.set_lapic(&state).map_err(LapicError::Set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lint_delivery_modes_are_set_and_other_bits_kept() {
        let mut state = kvm_lapic_state::default();
        write_reg(&mut state, APIC_LVT0, 0x0001_0000); // masked
        set_lint_modes(&mut state);
        assert_eq!(read_reg(&state, APIC_LVT0), 0x0001_0700);
        assert_eq!(read_reg(&state, APIC_LVT1), 0x0000_0400);
    }
}
