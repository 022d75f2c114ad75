guest_script() { printf '#!/bin/sh\necho hanging\nsleep 1000\n'; }
run() {
    vm_linux --timeout 20
    expect_status 0
}
