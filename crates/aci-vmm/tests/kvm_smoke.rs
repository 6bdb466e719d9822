//! KVM tier: proves that the host (or the nested runner's L1) gives us real KVM.
//!
//! A VM with one vCPU runs a few instructions of 64-bit code that write a known 32-bit value
//! to an I/O port and halt; the test checks the I/O exit, the port, the value and the halt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Instant;

use kvm_bindings::{kvm_segment, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VcpuExit};
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap};

const MEM_SIZE: usize = 0x20_0000; // 2 MiB at guest-physical 0
const GDT_ADDR: u64 = 0x500;
const PML4_ADDR: u64 = 0x1000;
const PDPT_ADDR: u64 = 0x2000;
const PD_ADDR: u64 = 0x3000;
const CODE_ADDR: u64 = 0x4000;
const PORT: u16 = 0xe9;
const VALUE: u32 = 0xacce_55ed;

// mov dx, 0xe9 ; mov eax, 0xacce55ed ; out dx, eax ; hlt
const CODE: [u8; 11] = [0x66, 0xba, 0xe9, 0x00, 0xb8, 0xed, 0x55, 0xce, 0xac, 0xef, 0xf4];

fn segment(selector: u16, code: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 0b1011 } else { 0b0011 },
        present: 1,
        dpl: 0,
        db: u8::from(!code),
        s: 1,
        l: u8::from(code),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

fn write_long_mode_tables(mem: &GuestMemoryMmap) {
    // GDT: null, 64-bit code (selector 0x08), data (selector 0x10).
    let gdt: [u64; 3] = [0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff];
    for (i, entry) in gdt.iter().enumerate() {
        mem.write_obj(*entry, GuestAddress(GDT_ADDR + 8 * i as u64)).unwrap();
    }
    // Identity-map the first GiB with 2 MiB pages: PML4[0] -> PDPT[0] -> PD[0..512].
    mem.write_obj(PDPT_ADDR | 0b11, GuestAddress(PML4_ADDR)).unwrap();
    mem.write_obj(PD_ADDR | 0b11, GuestAddress(PDPT_ADDR)).unwrap();
    for i in 0..512u64 {
        mem.write_obj((i << 21) | 0b1000_0011, GuestAddress(PD_ADDR + 8 * i)).unwrap();
    }
    mem.write_slice(&CODE, GuestAddress(CODE_ADDR)).unwrap();
}

#[test]
#[ignore = "KVM tier: run by `cargo xtask test` (inside the nested runner when needed)"]
fn long_mode_code_writes_port_and_halts() {
    if !support::require_hardware_kvm("long_mode_code_writes_port_and_halts") {
        return;
    }
    let started = Instant::now();

    let kvm = Kvm::new().unwrap();
    let vm = kvm.create_vm().unwrap();
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).unwrap();
    write_long_mode_tables(&mem);
    let host_addr = mem.get_host_address(GuestAddress(0)).unwrap();
    let region = kvm_userspace_memory_region {
        slot: 0,
        guest_phys_addr: 0,
        memory_size: MEM_SIZE as u64,
        userspace_addr: host_addr as u64,
        flags: 0,
    };
    // SAFETY: the region covers `mem`, which outlives `vm` and is not unmapped while the
    // VM can access it.
    unsafe { vm.set_user_memory_region(region).unwrap() };

    let mut vcpu = vm.create_vcpu(0).unwrap();
    let mut sregs = vcpu.get_sregs().unwrap();
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = 3 * 8 - 1;
    sregs.cs = segment(0x08, true);
    let data = segment(0x10, false);
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.cr3 = PML4_ADDR;
    sregs.cr4 |= 1 << 5; // PAE
    sregs.cr0 |= (1 << 0) | (1 << 31); // PE | PG
    sregs.efer |= (1 << 8) | (1 << 10); // LME | LMA
    vcpu.set_sregs(&sregs).unwrap();
    let mut regs = vcpu.get_regs().unwrap();
    regs.rip = CODE_ADDR;
    regs.rflags = 0x2;
    regs.rsp = 0x8000;
    vcpu.set_regs(&regs).unwrap();
    let setup = started.elapsed();

    let mut seen_out = None;
    let halted = loop {
        match vcpu.run().unwrap() {
            VcpuExit::IoOut(port, data) => {
                assert!(seen_out.is_none(), "more than one port write");
                seen_out = Some((port, data.to_vec()));
            }
            VcpuExit::Hlt => break true,
            other => panic!("unexpected VM exit: {other:?}"),
        }
    };
    let total = started.elapsed();

    let (port, data) = seen_out.expect("the guest wrote no port");
    assert_eq!(port, PORT);
    assert_eq!(data, VALUE.to_le_bytes());
    assert!(halted);
    let final_rip = vcpu.get_regs().unwrap().rip;
    assert_eq!(final_rip, CODE_ADDR + CODE.len() as u64, "halted at the wrong place");
    println!(
        "kvm_smoke: long-mode guest wrote {VALUE:#x} to port {PORT:#x} and halted; \
         setup {setup:?}, run {:?}, total {total:?}",
        total - setup
    );
}
