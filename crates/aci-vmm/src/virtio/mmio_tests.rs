//! Transport tests: a fake device behind the registers, driven as the Linux driver does.

use std::sync::{Arc, Mutex};

use super::*;
use crate::virtio::test_utils::{memory, TestQueue};
use crate::virtio::ActivateError;

#[derive(Default)]
struct Seen {
    activated: Option<(usize, u64)>,
    resets: u32,
    config_writes: Vec<(u64, Vec<u8>)>,
}

struct FakeDevice(Arc<Mutex<Seen>>);

impl VirtioDevice for FakeDevice {
    fn device_type(&self) -> u32 {
        42
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[16, 8]
    }
    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1 | 0b101
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::virtio::read_config_bytes(&[1, 2, 3, 4, 5, 6, 7, 8], offset, data);
    }
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        self.0.lock().unwrap().config_writes.push((offset, data.to_vec()));
    }
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError> {
        self.0.lock().unwrap().activated = Some((ctx.queues.len(), ctx.acked_features));
        Ok(())
    }
    fn reset(&mut self) {
        self.0.lock().unwrap().resets += 1;
    }
    fn counters(&self) -> Arc<crate::metrics::DeviceCounters> {
        Arc::default()
    }
}

fn transport() -> (MmioTransport, Arc<Mutex<Seen>>, GuestMem) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mem = memory();
    let t = MmioTransport::new(Box::new(FakeDevice(seen.clone())), mem.clone()).unwrap();
    (t, seen, mem)
}

fn r(t: &mut MmioTransport, offset: u64) -> u32 {
    let mut data = [0u8; 4];
    t.read(offset, &mut data);
    u32::from_le_bytes(data)
}

fn w(t: &mut MmioTransport, offset: u64, value: u32) {
    t.write(offset, &value.to_le_bytes());
}

fn set_up_queue(t: &mut MmioTransport, index: u32, q: &TestQueue, size: u32) {
    let (desc, avail, used) = q.addresses();
    w(t, reg::QUEUE_SEL, index);
    w(t, reg::QUEUE_NUM, size);
    w(t, reg::QUEUE_DESC_LOW, desc as u32);
    w(t, reg::QUEUE_DESC_HIGH, 0);
    w(t, reg::QUEUE_DRIVER_LOW, avail as u32);
    w(t, reg::QUEUE_DRIVER_HIGH, 0);
    w(t, reg::QUEUE_DEVICE_LOW, used as u32);
    w(t, reg::QUEUE_DEVICE_HIGH, 0);
    w(t, reg::QUEUE_READY, 1);
}

fn negotiate(t: &mut MmioTransport, low_bits: u32, high_bits: u32) -> u32 {
    w(t, reg::STATUS, status::ACKNOWLEDGE);
    w(t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    w(t, reg::DRIVER_FEATURES_SEL, 0);
    w(t, reg::DRIVER_FEATURES, low_bits);
    w(t, reg::DRIVER_FEATURES_SEL, 1);
    w(t, reg::DRIVER_FEATURES, high_bits);
    w(t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
    r(t, reg::STATUS)
}

#[test]
fn identity_registers_describe_a_modern_device() {
    let (mut t, _, _) = transport();
    assert_eq!(r(&mut t, reg::MAGIC), 0x7472_6976);
    assert_eq!(r(&mut t, reg::VERSION), 2);
    assert_eq!(r(&mut t, reg::DEVICE_ID), 42);
    w(&mut t, reg::DEVICE_FEATURES_SEL, 0);
    assert_eq!(r(&mut t, reg::DEVICE_FEATURES), 0b101);
    w(&mut t, reg::DEVICE_FEATURES_SEL, 1);
    assert_eq!(r(&mut t, reg::DEVICE_FEATURES), 1);
    w(&mut t, reg::QUEUE_SEL, 1);
    assert_eq!(r(&mut t, reg::QUEUE_NUM_MAX), 8);
    w(&mut t, reg::QUEUE_SEL, 2);
    assert_eq!(r(&mut t, reg::QUEUE_NUM_MAX), 0);
    // Unaligned or odd-sized register reads give zeros.
    let mut byte = [0xffu8; 1];
    t.read(reg::MAGIC, &mut byte);
    assert_eq!(byte, [0]);
}

#[test]
fn features_ok_needs_version_1_and_offered_bits_only() {
    let (mut t, _, _) = transport();
    assert_eq!(negotiate(&mut t, 0b1, 0) & status::FEATURES_OK, 0, "legacy driver refused");
    w(&mut t, reg::STATUS, 0);
    assert_eq!(negotiate(&mut t, 0b10, 1) & status::FEATURES_OK, 0, "unoffered bit refused");
    w(&mut t, reg::STATUS, 0);
    assert_ne!(negotiate(&mut t, 0b100, 1) & status::FEATURES_OK, 0);
    assert_eq!(t.acked_features(), VIRTIO_F_VERSION_1 | 0b100);
    // Features are frozen after FEATURES_OK.
    w(&mut t, reg::DRIVER_FEATURES_SEL, 0);
    w(&mut t, reg::DRIVER_FEATURES, 0b1);
    assert_eq!(t.acked_features(), VIRTIO_F_VERSION_1 | 0b100);
}

#[test]
fn driver_ok_activates_with_the_configured_queues_and_reset_clears() {
    let (mut t, seen, mem) = transport();
    negotiate(&mut t, 0, 1);
    let q0 = TestQueue::new(&mem, 0x10000, 16);
    let q1 = TestQueue::new(&mem, 0x20000, 8);
    set_up_queue(&mut t, 0, &q0, 16);
    set_up_queue(&mut t, 1, &q1, 8);
    w(&mut t, reg::QUEUE_SEL, 0);
    assert_eq!(r(&mut t, reg::QUEUE_READY), 1);
    let ok = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK;
    w(&mut t, reg::STATUS, ok);
    assert_eq!(r(&mut t, reg::STATUS), ok);
    assert_eq!(seen.lock().unwrap().activated, Some((2, VIRTIO_F_VERSION_1)));

    // Notifies that KVM did not consume still reach the queue's eventfd.
    w(&mut t, reg::QUEUE_NOTIFY, 1);
    assert_eq!(t.queue_events()[1].read().unwrap(), 1);

    t.interrupt().signal_used_queue();
    assert_eq!(r(&mut t, reg::INTERRUPT_STATUS), 1);
    w(&mut t, reg::INTERRUPT_ACK, 1);
    assert_eq!(r(&mut t, reg::INTERRUPT_STATUS), 0);

    w(&mut t, reg::STATUS, 0);
    assert_eq!(r(&mut t, reg::STATUS), 0);
    assert_eq!(seen.lock().unwrap().resets, 1);
    assert_eq!(r(&mut t, reg::QUEUE_READY), 0);
    assert_eq!(t.acked_features(), 0);
}

#[test]
fn bad_queue_addresses_fail_activation() {
    let (mut t, seen, mem) = transport();
    negotiate(&mut t, 0, 1);
    let q0 = TestQueue::new(&mem, 0x10000, 16);
    set_up_queue(&mut t, 0, &q0, 16);
    w(&mut t, reg::QUEUE_SEL, 0);
    w(&mut t, reg::QUEUE_DEVICE_HIGH, 0x10); // used ring far outside guest memory
    let ok = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK;
    w(&mut t, reg::STATUS, ok);
    assert_eq!(r(&mut t, reg::STATUS) & status::DRIVER_OK, 0);
    assert_ne!(r(&mut t, reg::STATUS) & status::DEVICE_NEEDS_RESET, 0);
    assert!(seen.lock().unwrap().activated.is_none());
}

#[test]
fn config_space_reads_and_writes_reach_the_device() {
    let (mut t, seen, _) = transport();
    let mut data = [0u8; 4];
    t.read(reg::CONFIG + 2, &mut data);
    assert_eq!(data, [3, 4, 5, 6]);
    t.read(reg::CONFIG + 6, &mut data);
    assert_eq!(data, [7, 8, 0, 0]);
    t.write(reg::CONFIG, &[9]);
    assert!(seen.lock().unwrap().config_writes.is_empty(), "no writes before DRIVER");
    w(&mut t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    let generation = r(&mut t, reg::CONFIG_GENERATION);
    t.write(reg::CONFIG + 1, &[9]);
    assert_eq!(seen.lock().unwrap().config_writes, vec![(1, vec![9])]);
    assert_ne!(r(&mut t, reg::CONFIG_GENERATION), generation);
}
