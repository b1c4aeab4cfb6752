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

enum sbx_sni_result {
	SBX_SNI_OK = 0,         /* a complete ClientHello was parsed (sni may be empty) */
	SBX_SNI_NEED_MORE = 1,  /* a valid prefix; read more bytes */
	SBX_SNI_NOT_TLS = 2,    /* does not start like a TLS handshake record */
	SBX_SNI_BAD = 3,        /* malformed, oversized, or an invalid server name */
};

struct sbx_sni {
	char host[256];  /* lowercased host_name (type 0) from server_name; "" if absent */
	char alpn[64];   /* comma-separated protocols offered, truncated; "" if absent */
	uint16_t version;/* legacy_version of the ClientHello */
	size_t hello_len;/* bytes of input the ClientHello records occupy */
};

/* Parses the start of a byte stream. A server name must be a valid DNS host name (no IP
 * literal, no trailing dot, LDH plus '_'), else SBX_SNI_BAD. */
enum sbx_sni_result sbx_sni_parse(const uint8_t *buf, size_t len, struct sbx_sni *out);

#endif
