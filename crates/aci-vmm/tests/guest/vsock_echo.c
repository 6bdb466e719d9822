/* Guest helper for tests/kvm_virtio.rs: accepts one vsock connection on the port given as
 * argv[1], echoes everything back until end of file, prints the byte count. */
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: vsock-echo PORT\n");
        return 2;
    }
    int port = atoi(argv[1]);
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm addr;
    memset(&addr, 0, sizeof addr);
    addr.svm_family = AF_VSOCK;
    addr.svm_port = port;
    addr.svm_cid = VMADDR_CID_ANY;
    if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 1) < 0) {
        perror("vsock-echo: listen");
        return 1;
    }
    printf("vsock-echo listening %d\n", port);
    fflush(stdout);
    int c = accept(s, NULL, NULL);
    if (c < 0) {
        perror("vsock-echo: accept");
        return 1;
    }
    static char buf[65536];
    long total = 0;
    for (;;) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0)
            break;
        total += n;
        for (char *p = buf; n > 0;) {
            ssize_t w = write(c, p, n);
            if (w <= 0) {
                perror("vsock-echo: write");
                goto out;
            }
            p += w;
            n -= w;
        }
    }
out:
    printf("vsock-echo done %ld\n", total);
    fflush(stdout);
    close(c);
    return 0;
}
