/* Entry point of every vCPU (include/vireo/testguest_abi.h):
 *   rdi = vCPU index, rsi = &vireo_boot_info, rsp = top of this vCPU's stack,
 *   ring 3, IOPL 3, IF 0. There is no ring-0 code and no IDT we could use, so
 *   nothing here may fault. */
    .section .text.entry, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    xorl %ebp, %ebp            /* end of frame chain for debuggers */
    andq $-16, %rsp            /* SysV: rsp % 16 == 0 before the call */
    cld
    call guest_main            /* (unsigned cpu, const struct vireo_boot_info *) */
1:  pause                      /* guest_main never returns; be safe anyway */
    jmp 1b
    .size _start, . - _start

    .section .note.GNU-stack, "", @progbits
