/* tls_sni.h - reading the server name (SNI) and ALPN from a TLS ClientHello, without TLS.
 *
 * The transparent proxy sees the first bytes a sandbox sends on a TLS connection and needs the
 * host name it is trying to reach. The parser is strict and bounded: one ClientHello, possibly
 * split over several TLS records, at most SBX_TLS_MAX_HELLO bytes; every length is checked. */
#ifndef SBX_TLS_SNI_H
#define SBX_TLS_SNI_H

#include <stddef.h>
#include <stdint.h>

#define SBX_TLS_MAX_HELLO 16384
/* Records one ClientHello may be split over: real clients use one, hand-made splits a few. With
 * it, a ClientHello never takes more than SBX_TLS_MAX_INPUT bytes of the stream. */
#define SBX_TLS_MAX_RECORDS 64
#define SBX_TLS_MAX_INPUT (4 + SBX_TLS_MAX_HELLO + 5 * SBX_TLS_MAX_RECORDS)

enum sbx_sni_result {
	SBX_SNI_OK = 0,         /* a complete ClientHello was parsed (sni may be empty) */
	SBX_SNI_NEED_MORE = 1,  /* a valid prefix; read more bytes */
	SBX_SNI_NOT_TLS = 2,    /* does not start like a TLS handshake record */
	SBX_SNI_BAD = 3,        /* malformed, oversized, or an invalid server name */
};

struct sbx_sni {
	char host[256];  /* lowercased host_name (type 0) from server_name; "" if absent */
	char alpn[64];   /* comma-separated protocols offered, truncated; "" if absent. Only
			  * whole names, in order, until one does not fit; names with bytes other
			  * than printable ASCII or with a ',' (GREASE values) are left out */
	uint16_t version;/* legacy_version of the ClientHello */
	size_t hello_len;/* bytes of input the ClientHello records occupy */
};

/* Parses the start of a byte stream. A server name must be a valid DNS host name (no IP
 * literal, no trailing dot, LDH plus '_'), else SBX_SNI_BAD. Records must be handshake records
 * of one version 0x0301..0x0304 (an SSL 3.0 record is BAD), the ClientHello must end where a
 * record ends, and the result never depends on how the stream was split: a prefix of an input
 * is NEED_MORE or that input's own result (NOT_TLS, BAD, or OK with the same hello_len). out is
 * filled only on SBX_SNI_OK (zeroed otherwise). */
enum sbx_sni_result sbx_sni_parse(const uint8_t *buf, size_t len, struct sbx_sni *out);

#endif
