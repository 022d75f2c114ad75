#ifndef VIREO_VERSION_H
#define VIREO_VERSION_H
#define VIREO_VERSION "0.1.0"
#endif
