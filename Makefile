# sbx build. `make` builds build/bin/{sbx,sbxd,sbx-init,sbx-probe}; `make check` runs every test;
# `make SAN=1` builds an ASan+UBSan tree in build-san/; `make CC=clang` builds with clang.
# Each source directory is one component; adding a .c file to it is all a new module needs.

ifeq ($(origin CC),default)
CC := gcc
endif
SAN     ?=
O       ?= $(if $(SAN),build-san,build)
PREFIX  ?= /usr/local

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1.0)

WARN    := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
           -Wformat=2 -Wvla -Wpointer-arith -Wno-unused-parameter $(if $(findstring clang,$(CC)),,-Wno-format-truncation)
CSTD    := -std=gnu17
CPPFLAGS_ALL := -D_GNU_SOURCE -Isrc/common -Isrc -DSBX_VERSION='"$(VERSION)"'
OPT     := -O2 -g
HARDEN  := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
comma := ,
SANFLAGS := $(if $(SAN),-fsanitize=address$(comma)undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined,)

CFLAGS_ALL  := $(CSTD) $(WARN) $(OPT) $(HARDEN) $(CPPFLAGS_ALL) $(CFLAGS)
# sbx-init and the probe are static and run inside sandboxes: no sanitizer runtimes there.
CFLAGS_STATIC := $(CSTD) $(WARN) $(OPT) -fstack-protector-strong -D_FORTIFY_SOURCE=2 $(CPPFLAGS_ALL) $(CFLAGS)
LDFLAGS_ALL := -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(SANFLAGS) $(LDFLAGS)

PKGS    := jansson sqlite3 libseccomp openssl libnftnl libmnl zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

COMMON_SRC := $(wildcard src/common/*.c)
CLI_SRC    := $(wildcard src/cli/*.c)
DAEMON_SRC := $(filter-out src/daemon/main.c,$(wildcard src/daemon/*.c))
INIT_SRC   := $(wildcard src/init/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(O)/obj/%.o,$(1))
sobj = $(patsubst %.c,$(O)/sobj/%.o,$(1))

COMMON_OBJ := $(call obj,$(COMMON_SRC))
CLI_OBJ    := $(call obj,$(CLI_SRC))
DAEMON_OBJ := $(call obj,$(DAEMON_SRC))
INIT_OBJ   := $(call sobj,$(INIT_SRC) $(COMMON_SRC))

BINS  := $(O)/bin/sbx $(O)/bin/sbxd $(O)/bin/sbx-init $(O)/bin/sbx-probe
UNITS := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRC))

.PHONY: all check ci unit install clean fuzz bench format
all: $(BINS) $(UNITS)

$(O)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(SANFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(O)/sobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_STATIC) -MMD -MP -c $< -o $@

$(O)/lib/libsbxcommon.a: $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(O)/lib/libsbxd.a: $(DAEMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(O)/bin/sbx: $(CLI_OBJ) $(O)/lib/libsbxcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

$(O)/bin/sbxd: $(call obj,src/daemon/main.c) $(O)/lib/libsbxd.a $(O)/lib/libsbxcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

$(O)/bin/sbx-init: $(INIT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -static -o $@ $^

$(O)/bin/sbx-probe: $(call sobj,tests/probe/probe.c) $(call sobj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	$(CC) -static -o $@ $^

$(O)/tests/%: $(O)/obj/tests/unit/%.o $(O)/lib/libsbxd.a $(O)/lib/libsbxcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

# Unit tests only (fast, no root needed).
unit: $(UNITS)
	@for t in $(UNITS); do $$t || exit 1; done

# The whole suite, the way CI runs it: pytest drives the unit binaries and the integration tests.
check: all
	SBX_BUILD=$(abspath $(O)) /usr/bin/python3 -m pytest -c tests/pytest.ini tests $(PYTEST_ARGS)

# What CI runs: warnings-as-errors builds with gcc and clang, the whole suite on the normal
# build and again on the ASan+UBSan build, every fuzz corpus replayed and each fuzzer run briefly.
ci:
	$(MAKE) all
	$(MAKE) CC=clang O=build-clang all
	$(MAKE) check
	$(MAKE) SAN=1 check
	$(MAKE) -f fuzz/Makefile replay
	$(MAKE) -f fuzz/Makefile run FUZZ_SECONDS=$(or $(FUZZ_SECONDS),20)

fuzz:
	$(MAKE) -f fuzz/Makefile

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec/sbx
	install -m 0755 $(O)/bin/sbx $(DESTDIR)$(PREFIX)/bin/sbx
	install -m 0755 $(O)/bin/sbxd $(DESTDIR)$(PREFIX)/libexec/sbx/sbxd
	install -m 0755 $(O)/bin/sbx-init $(DESTDIR)$(PREFIX)/libexec/sbx/sbx-init

clean:
	rm -rf build build-san build-clang build-fuzz

-include $(shell find $(O) -name '*.d' 2>/dev/null)
