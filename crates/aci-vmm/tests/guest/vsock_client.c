/* Guest helper for tests/kvm_virtio.rs: connects to the host (CID 2) on port argv[1], sends
 * argv[2], shuts down its sending side, prints what the host answers until end of file. */
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: vsock-client PORT MESSAGE\n");
        return 2;
    }
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm addr;
    memset(&addr, 0, sizeof addr);
    addr.svm_family = AF_VSOCK;
    addr.svm_port = atoi(argv[1]);
    addr.svm_cid = VMADDR_CID_HOST;
    if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("vsock-client: connect");
        return 1;
    }
    size_t len = strlen(argv[2]);
    if (write(s, argv[2], len) != (ssize_t)len || shutdown(s, SHUT_WR) < 0) {
        perror("vsock-client: send");
        return 1;
    }
    char buf[256];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(s, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            break;
        got += n;
    }
    buf[got] = 0;
    printf("vsock-client got: %s\n", buf);
    fflush(stdout);
    close(s);
    return 0;
}
