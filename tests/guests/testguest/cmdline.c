/* The guest command line: space-separated "key=value" words, e.g.
 *   workload=mem:16 qd=32 disk=/dev/vda
 * Options so far: workload= (main.c), tsc=calibrate (time.c). Later ones
 * (queue depth, disk, ...) are read the same way, with cmdline_get(). */
#include "guest.h"

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool cmdline_get(const char *key, char *buf, size_t size)
{
    const struct vireo_boot_info *bi = boot_info();
    /* Read only what lies inside guest RAM: a bad address must not fault. */
    if (!bi->cmdline_addr || bi->cmdline_addr >= bi->mem_size || bi->cmdline_len > bi->mem_size - bi->cmdline_addr)
        return false;
    const char *p = (const char *)(uintptr_t)bi->cmdline_addr, *end = p + bi->cmdline_len;
    size_t klen = strlen(key);
    bool found = false;
    while (p < end) {
        while (p < end && is_space(*p)) p++;
        const char *word = p;
        while (p < end && !is_space(*p) && *p) p++;
        size_t wlen = (size_t)(p - word);
        /* The last occurrence wins, as on Linux. */
        if (wlen > klen && word[klen] == '=' && !memcmp(word, key, klen)) {
            size_t vlen = wlen - klen - 1;
            found = vlen < size;
            if (found) {
                memcpy(buf, word + klen + 1, vlen);
                buf[vlen] = '\0';
            }
        }
        if (p < end && !*p) break; /* embedded NUL ends the line */
    }
    return found;
}

uint64_t opt_u64(const char *key, uint64_t def)
{
    char v[32];
    uint64_t x;
    if (cmdline_get(key, v, sizeof v) && parse_u64(v, &x)) return x;
    return def;
}
