/*
 * hold-kvm: the L1 test VM's init runs this right after loading kvm_amd, before anything
 * else. It creates one KVM VM and keeps it open for the whole session, so that L1's KVM
 * enables SVM and patches its code once, while the other vCPU is idle: creating and
 * destroying VMs later then changes nothing shared, which QEMU 7.2's multi-threaded TCG
 * otherwise occasionally does not survive (see docs/testing.md). Built statically by
 * `cargo xtask` (L1 has no libc at that point). Exits 1 with a message on failure.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void) {
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) { perror("hold-kvm: open /dev/kvm"); return 1; }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) { perror("hold-kvm: KVM_CREATE_VM"); return 1; }
    int fd = open("/run-kvm-held", O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) close(fd);
    for (;;) pause();
}
