/** The bootcfs version, compiled in (the binary must not read files of the source tree). */
export const VERSION = "0.1.0";
