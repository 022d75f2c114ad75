/* Console: COM1, a 16550A. Output only, polled (no interrupts exist here).
 * One spinlock around each formatted line so several vCPUs never interleave
 * within a line. */
#include "arch.h"
#include "guest.h"

#define COM1_THR (VIREO_SERIAL_COM1 + 0)
#define COM1_LSR (VIREO_SERIAL_COM1 + 5)
#define LSR_THRE 0x20
/* A console that never becomes ready must not hang the guest: give up
 * waiting after this many polls and write anyway. */
#define THRE_POLLS 100000

static spinlock_t console_lock;

static void serial_putc(char c)
{
    for (int i = 0; i < THRE_POLLS && !(inb(COM1_LSR) & LSR_THRE); i++) cpu_relax();
    outb(COM1_THR, (uint8_t)c);
}

void console_write(const char *s, size_t len)
{
    spin_lock(&console_lock);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\n') serial_putc('\r');
        serial_putc(s[i]);
    }
    spin_unlock(&console_lock);
}

void cprintf(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof line) n = sizeof line - 1; /* truncated, still a line */
    console_write(line, (size_t)n);
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

/* The formatter: %[0][width][l|ll|z](d|i|u|x|X|p|s|c) and %%. Enough for
 * this guest; returns the length it would have written, like C's. */
struct out {
    char *buf;
    size_t size, len;
};

static void put(struct out *o, char c)
{
    if (o->len + 1 < o->size) o->buf[o->len] = c;
    o->len++;
}

static void put_num(struct out *o, uint64_t v, unsigned base, bool neg, unsigned width, char pad, bool upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    unsigned n = 0;
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    if (neg) {
        if (pad == '0') put(o, '-');
        else tmp[n++] = '-';
        if (width) width--;
    }
    for (unsigned i = n; i < width; i++) put(o, pad);
    while (n) put(o, tmp[--n]);
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = {buf, size, 0};
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(&o, *fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        unsigned width = 0, longs = 0;
        if (*fmt == '0') pad = '0', fmt++;
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (unsigned)(*fmt++ - '0');
        while (*fmt == 'l' || *fmt == 'z') longs += *fmt == 'z' ? 2 : 1, fmt++;
        switch (*fmt) {
        case 'd':
        case 'i': {
            int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
            put_num(&o, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad, false);
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            uint64_t v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            put_num(&o, v, *fmt == 'u' ? 10 : 16, false, width, pad, *fmt == 'X');
            break;
        }
        case 'p':
            put(&o, '0'), put(&o, 'x');
            put_num(&o, (uintptr_t)va_arg(ap, void *), 16, false, width, pad, false);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            size_t n = strlen(s);
            for (size_t i = n; i < width; i++) put(&o, ' ');
            while (*s) put(&o, *s++);
            break;
        }
        case 'c':
            put(&o, (char)va_arg(ap, int));
            break;
        case '%':
            put(&o, '%');
            break;
        case '\0':
            fmt--; /* a lone '%' at the end */
            break;
        default:
            put(&o, '%'), put(&o, *fmt);
        }
    }
    if (size) buf[o.len < size ? o.len : size - 1] = '\0';
    return (int)o.len;
}
