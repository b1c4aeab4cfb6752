/* tls_mitm.c - the interception CA and the leaf certificates it signs (see tls_mitm.h).
 *
 * Files. The CA is two files in its own directory: ca.key (PKCS#8 PEM, 0600) and ca.pem (0644).
 * Each is written to a temp file in the same directory, fsynced and renamed into place with
 * RENAME_NOREPLACE (link() where the file system lacks it), so a half-written file is never
 * visible and an existing file is never replaced: users may have installed ca.pem elsewhere,
 * and a CA that changed under them would silently break every sandbox's trust. For the same
 * reason a CA that cannot be used (unreadable, mismatched, expired, not a CA) is refused with
 * the fix named, never regenerated.
 *
 * Leaves. Every leaf has its own P-256 key, generated from one prepared keygen context; the
 * extensions common to all leaves are encoded once at open. The subject alternative name is
 * built as a GENERAL_NAME, not parsed from a "DNS:..." string, so no host can smuggle extra
 * names in even if validation were wrong. Leaves live in an LRU cache (hash table + list),
 * keyed by the canonical host (lowercase name, or inet_ntop form of an address). A mint costs
 * about 0.3 ms on this machine, two thirds of it in X509_set_pubkey: OpenSSL 3.0 encodes the key
 * with a provider encoder and decodes it again, and every 3.0 way of putting a key into an X509
 * (d2i, X509_dup) pays the same decoder cost. The cache keeps that off the connection path.
 *
 * Server side. One SSL_CTX serves every host; each SSL gets its leaf with SSL_use_certificate
 * and SSL_use_PrivateKey. With OpenSSL 3 creating an SSL_CTX costs far more than setting a
 * certificate on an SSL (test_mitm prints both), and a context per cached leaf would also cost
 * memory per entry. The CA certificate is not sent: clients must hold it as a trust anchor
 * anyway (RFC 8446 4.4.2 allows leaving the root out).
 *
 * Every failure empties OpenSSL's error queue: the proxy shares this thread's queue, and a stale
 * entry would make its next SSL_get_error() report a failure that did not happen. */
#include "tls_mitm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "util.h"

#define DAY_S 86400L
#define CA_VALID_S ((10L * 365 + 3) * DAY_S) /* ten years, leap days included */
#define LEAF_VALID_S (30L * DAY_S)
#define BACKDATE_S 3600L           /* a sandbox's or VM's clock may lag the host's a little */
#define CA_MIN_LEFT_S (30L * DAY_S) /* a CA with less left is refused at open */
#define LEAF_MIN_LEFT_S DAY_S      /* a cached leaf with less left is minted again */
#define FILE_MAX (64 * 1024)       /* larger ca.key / ca.pem files are not ours */
#define HOST_MAX 253               /* RFC 1035 text form without the trailing dot */
#define LABEL_MAX 63
#define CN_MAX 64                  /* ub-common-name (RFC 5280) */
#define NBUCKETS 2048              /* a power of two, at least twice SBX_MITM_CACHE */

_Static_assert((NBUCKETS & (NBUCKETS - 1)) == 0 && NBUCKETS >= 2 * SBX_MITM_CACHE,
	       "NBUCKETS must be a power of two of at least 2 * SBX_MITM_CACHE");

struct ca_files {
	char dir[PATH_MAX];
	char key[PATH_MAX];  /* dir/ca.key */
	char cert[PATH_MAX]; /* dir/ca.pem */
};

struct leaf {
	struct leaf *hnext;       /* bucket chain */
	struct leaf *prev, *next; /* LRU list, most recently used first */
	uint64_t hash;
	X509 *cert;
	EVP_PKEY *key;
	time_t not_after;
	char host[]; /* canonical form */
};

struct sbx_mitm {
	struct ca_files f;
	char *ca_pem;
	X509 *ca;
	EVP_PKEY *ca_key;
	time_t ca_not_after;
	SSL_CTX *ctx;
	EVP_PKEY_CTX *keygen; /* initialised for P-256 */
	X509_EXTENSION *leaf_ext[4]; /* basicConstraints, keyUsage, extendedKeyUsage, AKI */
	size_t n_leaf_ext;

	struct leaf *buckets[NBUCKETS];
	struct leaf *head, *tail;
	unsigned count, cap;
	uint64_t hash_seed;
	long clock_shift; /* tests only */
	unsigned long minted, hits;
};

/* ---- errors ---- */

/* Fills err from the first queued OpenSSL error and empties the queue. */
static int ossl_err(sbx_err *err, enum sbx_errc code, const char *what)
{
	char why[256] = "unknown OpenSSL error";
	unsigned long e = ERR_get_error();

	if (e) {
		const char *r = ERR_reason_error_string(e);
		if (r)
			sbx_strlcpy(why, r, sizeof(why));
		else
			ERR_error_string_n(e, why, sizeof(why));
	}
	ERR_clear_error();
	return sbx_err_set(err, code, "%s: %s", what, why);
}

static void fmt_date(time_t t, char *out, size_t n)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%d %H:%M UTC", &tm))
		sbx_strlcpy(out, "?", n);
}

static int asn1_to_time(const ASN1_TIME *a, time_t *out)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(a, &tm) != 1)
		return -1;
	*out = timegm(&tm);
	return 0;
}

/* ---- host names ---- */

enum host_kind { HOST_DNS, HOST_IP };

struct host {
	enum host_kind kind;
	unsigned char addr[16];
	size_t addr_len;
	char name[HOST_MAX + 1]; /* lowercase name, or the canonical text of the address */
};

/* The host as given, for a message: printable ASCII only, shortened. Sandbox-controlled bytes
 * must not reach logs and terminals raw. */
static void host_for_msg(const char *in, char out[80])
{
	size_t j = 0;

	for (size_t i = 0; in[i]; i++) {
		unsigned char c = (unsigned char)in[i];
		if (j == 64) {
			memcpy(out + j, "...", 4);
			return;
		}
		out[j++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[j] = '\0';
}

static int host_bad(sbx_err *err, const char *in, const char *why)
{
	char q[80];

	host_for_msg(in, q);
	return sbx_err_set(err, SBX_E_INVALID, "the host name \"%s\" cannot be put in a certificate: %s", q, why);
}

/* Accepts an IPv4 or IPv6 literal (inet_pton forms, no brackets, no zone), or a DNS host name:
 * labels of 1..63 letters, digits, '-' and '_', at most 253 characters, no trailing dot, a last
 * label that is not all digits (so "1.2.3" is not taken for a name). Letters are lowercased:
 * names are case-insensitive, and the cache must not hold one leaf per spelling. */
static int host_canon(const char *in, struct host *h, sbx_err *err)
{
	size_t len, label = 0;
	bool numeric = true;
	int af = 0;

	memset(h, 0, sizeof(*h));
	if (!in || !*in)
		return sbx_err_set(err, SBX_E_INVALID, "an empty host name cannot be put in a certificate");
	len = strnlen(in, HOST_MAX + 1);
	if (len > HOST_MAX)
		return host_bad(err, in, "it is longer than 253 characters");
	if (inet_pton(AF_INET, in, h->addr) == 1)
		af = AF_INET;
	else if (inet_pton(AF_INET6, in, h->addr) == 1)
		af = AF_INET6;
	if (af) {
		h->kind = HOST_IP;
		h->addr_len = af == AF_INET ? 4 : 16;
		if (!inet_ntop(af, h->addr, h->name, sizeof(h->name)))
			return sbx_err_sys(err, SBX_E_INTERNAL, errno, "inet_ntop");
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '.') {
			if (label == 0)
				return host_bad(err, in, "it has an empty label");
			label = 0;
			numeric = true;
			h->name[i] = '.';
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c == '*')
			return host_bad(err, in, "wildcards are never minted");
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return host_bad(err, in,
					c >= 0x80 ? "it is not ASCII (international names go in their xn-- form)"
						  : "it has a character other than letters, digits, '-', '_' and '.'");
		if (c < '0' || c > '9')
			numeric = false;
		if (++label > LABEL_MAX)
			return host_bad(err, in, "it has a label longer than 63 characters");
		h->name[i] = (char)c;
	}
	if (label == 0)
		return host_bad(err, in, "it ends with a dot");
	if (numeric)
		return host_bad(err, in, "its last label is all digits but it is not an IPv4 or IPv6 address");
	h->name[len] = '\0';
	h->kind = HOST_DNS;
	return 0;
}

/* ---- files ---- */

static int set_files(struct ca_files *f, const char *dir, sbx_err *err)
{
	if (!dir || !*dir)
		return sbx_err_set(err, SBX_E_INVALID, "no directory given for the proxy CA");
	if (sbx_strlcpy(f->dir, dir, sizeof(f->dir)) >= sizeof(f->dir) ||
	    (size_t)snprintf(f->key, sizeof(f->key), "%s/ca.key", dir) >= sizeof(f->key) ||
	    (size_t)snprintf(f->cert, sizeof(f->cert), "%s/ca.pem", dir) >= sizeof(f->cert))
		return sbx_err_set(err, SBX_E_INVALID, "the CA directory path is too long: %s", dir);
	return 0;
}

/* Creates the directory 0700 if missing; refuses one that others could write to, since they
 * could then swap the CA files. */
static int ensure_dir(const struct ca_files *f, sbx_err *err)
{
	struct stat st;

	if (sbx_mkdir_p(f->dir, 0700) < 0)
		return sbx_err_sys(err, errno == EACCES ? SBX_E_PERM : SBX_E_IO, errno, "cannot create the CA directory %s",
				   f->dir);
	if (stat(f->dir, &st) < 0)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot stat the CA directory %s", f->dir);
	if (!S_ISDIR(st.st_mode))
		return sbx_err_set(err, SBX_E_NOINPUT, "%s is not a directory: move it away so the proxy CA can live there",
				   f->dir);
	if (st.st_uid != geteuid())
		return sbx_err_set(err, SBX_E_PERM, "the CA directory %s belongs to uid %u, not to uid %u that sbxd runs as",
				   f->dir, (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & 022)
		return sbx_err_set(err, SBX_E_PERM, "the CA directory %s is writable by other users (mode %04o): run chmod 700 %s",
				   f->dir, (unsigned)(st.st_mode & 07777), f->dir);
	return 0;
}

static int fsync_dir(const char *dir, sbx_err *err)
{
	cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot sync the directory %s", dir);
	return 0;
}

/* Writes a new file through a temp file in the same directory: fsync, then a rename that never
 * replaces an existing file (a CA that appeared meanwhile wins, and this fails). */
static int write_new_file(const char *path, const void *data, size_t len, mode_t mode, sbx_err *err)
{
	char tmp[PATH_MAX];
	int fd, e = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
		return sbx_err_set(err, SBX_E_INVALID, "path too long: %s", path);
	fd = mkostemp(tmp, O_CLOEXEC); /* 0600 from the start: the key is never readable by others */
	if (fd < 0)
		return sbx_err_sys(err, errno == EACCES ? SBX_E_PERM : SBX_E_IO, errno, "cannot create a temp file for %s",
				   path);
	if (fchmod(fd, mode) < 0 || sbx_write_all(fd, data, len) < 0 || fsync(fd) < 0)
		e = errno;
	if (close(fd) < 0 && !e)
		e = errno;
	if (e) {
		unlink(tmp);
		return sbx_err_sys(err, SBX_E_IO, e, "cannot write %s", tmp);
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	e = errno;
	if (e == EINVAL || e == ENOSYS) /* no RENAME_NOREPLACE here: link() never replaces either */
		e = link(tmp, path) == 0 ? 0 : errno;
	unlink(tmp);
	if (e == EEXIST)
		return sbx_err_set(err, SBX_E_CONFLICT, "%s appeared while sbxd was creating it: another sbxd? Retry", path);
	if (e)
		return sbx_err_sys(err, SBX_E_IO, e, "cannot create %s", path);
	return 0;
}

/* Reads one CA file: a regular file (not a symlink, not a FIFO), owned by this user, and for the
 * key, closed to others. */
static int read_ca_file(const char *path, bool is_key, char **out, size_t *out_len, sbx_err *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	cleanup_free char *buf = NULL;
	struct stat st;
	ssize_t n;

	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			return sbx_err_set(err, SBX_E_INVALID,
					   "%s is a symbolic link: the CA files must be plain files (put the file itself there)", path);
		return sbx_err_sys(err, e == ENOENT ? SBX_E_NOINPUT : e == EACCES ? SBX_E_PERM : SBX_E_IO, e, "cannot open %s",
				   path);
	}
	if (fstat(fd, &st) < 0)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot stat %s", path);
	if (!S_ISREG(st.st_mode))
		return sbx_err_set(err, SBX_E_INVALID, "%s is not a regular file", path);
	if (st.st_uid != geteuid())
		return sbx_err_set(err, SBX_E_PERM, "%s belongs to uid %u, not to uid %u that sbxd runs as: chown it", path,
				   (unsigned)st.st_uid, (unsigned)geteuid());
	if (is_key && (st.st_mode & 07777 & ~(mode_t)0600))
		return sbx_err_set(err, SBX_E_PERM, "the CA private key %s has mode %04o, wider than 0600: run chmod 600 %s", path,
				   (unsigned)(st.st_mode & 07777), path);
	if (st.st_size > FILE_MAX)
		return sbx_err_set(err, SBX_E_INVALID, "%s is larger than %d bytes: it is not a CA file", path, FILE_MAX);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	n = sbx_read_all(fd, buf, (size_t)st.st_size);
	if (n < 0)
		return sbx_err_sys(err, SBX_E_IO, errno, "cannot read %s", path);
	buf[n] = '\0';
	*out_len = (size_t)n;
	*out = take_ptr(buf);
	return 0;
}

/* Never ask for a pass phrase: OpenSSL's default would prompt on the daemon's terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/* ---- certificates ---- */

static int set_random_serial(X509 *x)
{
	BIGNUM *bn = BN_new();
	int ok = bn && BN_rand(bn, 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
		 (!BN_is_zero(bn) || BN_one(bn) == 1) && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));

	BN_free(bn);
	return ok ? 0 : -1;
}

static int add_conf_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1) == 1;

	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* Printable ASCII only, for a certificate name. */
static void name_part(const char *in, size_t max, char *out, size_t outlen)
{
	size_t j = 0;

	for (size_t i = 0; in[i] && j < max && j + 1 < outlen; i++) {
		unsigned char c = (unsigned char)in[i];
		out[j++] = c > 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[j] = '\0';
}

/* "sbx proxy CA <user>@<host> <date>", within the 64 characters a common name may have. */
static void ca_common_name(time_t now, char *out, size_t outlen)
{
	char pwbuf[4096], hostname[256] = "", user[17], host[64], date[16];
	struct passwd pw, *res = NULL;
	struct tm tm;
	size_t room;

	if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
		name_part(res->pw_name, 16, user, sizeof(user));
	else
		snprintf(user, sizeof(user), "%u", (unsigned)geteuid());
	if (gethostname(hostname, sizeof(hostname)) < 0)
		sbx_strlcpy(hostname, "localhost", sizeof(hostname));
	hostname[sizeof(hostname) - 1] = '\0';
	/* "sbx proxy CA " + user + "@" + host + " YYYY-MM-DD" */
	room = CN_MAX - 13 - 1 - 11 - strlen(user);
	name_part(hostname, room, host, sizeof(host));
	if (!gmtime_r(&now, &tm) || !strftime(date, sizeof(date), "%Y-%m-%d", &tm))
		sbx_strlcpy(date, "?", sizeof(date));
	snprintf(out, outlen, "sbx proxy CA %s@%s %s", user, host, date);
}

static char *pem_string(BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);

	return n > 0 ? strndup(data, (size_t)n) : NULL;
}

/* A new CA valid from now+not_before_s to now+not_after_s, written to f (which must not hold
 * one). The key is written first; if the certificate then cannot be written, the key just
 * created is removed again, so a failure leaves nothing behind. */
static int create_ca(const struct ca_files *f, long not_before_s, long not_after_s, sbx_err *err)
{
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	X509_NAME *name = NULL;
	BIO *kb = NULL, *cb = NULL;
	cleanup_free char *key_pem = NULL;
	cleanup_free char *cert_pem = NULL;
	time_t now = time(NULL);
	char cn[CN_MAX + 1];
	X509V3_CTX v3;
	int ret = -1;

	ca_common_name(now, cn, sizeof(cn));
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	x = X509_new();
	name = X509_NAME_new();
	kb = BIO_new(BIO_s_mem());
	cb = BIO_new(BIO_s_mem());
	if (!key || !x || !name || !kb || !cb || X509_set_version(x, X509_VERSION_3) != 1 || set_random_serial(x) < 0 ||
	    !X509_time_adj_ex(X509_getm_notBefore(x), 0, not_before_s, &now) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), 0, not_after_s, &now) ||
	    X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8, (const unsigned char *)"sbx", -1, -1,
				       0) != 1 ||
	    X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, key) != 1) {
		ossl_err(err, SBX_E_INTERNAL, "cannot build the proxy CA certificate");
		goto out;
	}
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (add_conf_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
	    add_conf_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    add_conf_ext(x, &v3, NID_subject_key_identifier, "hash") < 0 || X509_sign(x, key, EVP_sha256()) <= 0) {
		ossl_err(err, SBX_E_INTERNAL, "cannot sign the proxy CA certificate");
		goto out;
	}
	if (PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1 || PEM_write_bio_X509(cb, x) != 1 ||
	    !(key_pem = pem_string(kb)) || !(cert_pem = pem_string(cb))) {
		ossl_err(err, SBX_E_INTERNAL, "cannot encode the proxy CA");
		goto out;
	}
	if (write_new_file(f->key, key_pem, strlen(key_pem), 0600, err) < 0)
		goto out;
	if (write_new_file(f->cert, cert_pem, strlen(cert_pem), 0644, err) < 0) {
		unlink(f->key);
		goto out;
	}
	if (fsync_dir(f->dir, err) < 0)
		goto out;
	ret = 0;
out:
	if (key_pem)
		OPENSSL_cleanse(key_pem, strlen(key_pem));
	BIO_free(kb);
	BIO_free(cb);
	X509_NAME_free(name);
	X509_free(x);
	EVP_PKEY_free(key);
	return ret;
}

/* The fix for any CA that cannot be used, appended to the refusals below. */
#define CA_FIX "remove the directory %s to have sbxd mint a new CA (sandboxes pick it up when restarted; replace ca.pem wherever else you installed it)"

/* Loads and checks the CA: a readable unencrypted key, a certificate that is a CA, the two
 * matching, and at least 30 days of validity left. */
static int load_ca(struct sbx_mitm *m, sbx_err *err)
{
	const struct ca_files *f = &m->f;
	cleanup_free char *kdata = NULL;
	cleanup_free char *cdata = NULL;
	size_t klen, clen;
	BIO *b;
	time_t now = time(NULL), not_before;
	char date[40];
	bool encrypted;
	int ret = -1;

	if (read_ca_file(f->key, true, &kdata, &klen, err) < 0 || read_ca_file(f->cert, false, &cdata, &clen, err) < 0)
		return -1;

	encrypted = strstr(kdata, "ENCRYPTED") != NULL;
	b = BIO_new_mem_buf(kdata, (int)klen);
	m->ca_key = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
	BIO_free(b);
	OPENSSL_cleanse(kdata, klen);
	if (!m->ca_key) {
		ERR_clear_error();
		if (encrypted)
			return sbx_err_set(err, SBX_E_INVALID,
					   "the CA private key %s is encrypted: sbxd needs it unencrypted (its mode 0600 protects it); "
					   "decrypt it with openssl pkey -in %s -out %s.new, then mv %s.new %s",
					   f->key, f->key, f->key, f->key, f->key);
		return sbx_err_set(err, SBX_E_INVALID, "the CA private key %s is not a PEM private key (corrupt or truncated?): restore it, or " CA_FIX,
				   f->key, f->dir);
	}
	if (!EVP_PKEY_is_a(m->ca_key, "EC") && !EVP_PKEY_is_a(m->ca_key, "RSA"))
		return sbx_err_set(err, SBX_E_INVALID, "the CA private key %s is of type %s: sbx signs with EC or RSA keys only; " CA_FIX,
				   f->key, EVP_PKEY_get0_type_name(m->ca_key) ? EVP_PKEY_get0_type_name(m->ca_key) : "?", f->dir);

	b = BIO_new_mem_buf(cdata, (int)clen);
	m->ca = b ? PEM_read_bio_X509(b, NULL, no_passphrase, NULL) : NULL;
	BIO_free(b);
	if (!m->ca) {
		ERR_clear_error();
		return sbx_err_set(err, SBX_E_INVALID, "%s is not a PEM certificate (corrupt or truncated?): restore it, or " CA_FIX,
				   f->cert, f->dir);
	}
	if (X509_check_ca(m->ca) != 1)
		return sbx_err_set(err, SBX_E_INVALID, "%s is not a CA certificate (no basicConstraints CA:TRUE, or no keyCertSign): " CA_FIX,
				   f->cert, f->dir);
	if (X509_check_private_key(m->ca, m->ca_key) != 1) {
		ERR_clear_error();
		return sbx_err_set(err, SBX_E_INVALID, "the CA private key %s does not belong to the certificate %s: restore the matching key, or " CA_FIX,
				   f->key, f->cert, f->dir);
	}
	if (asn1_to_time(X509_get0_notBefore(m->ca), &not_before) < 0 ||
	    asn1_to_time(X509_get0_notAfter(m->ca), &m->ca_not_after) < 0) {
		ERR_clear_error();
		return sbx_err_set(err, SBX_E_INVALID, "%s has an unreadable validity period: " CA_FIX, f->cert, f->dir);
	}
	if (not_before > now) {
		fmt_date(not_before, date, sizeof(date));
		return sbx_err_set(err, SBX_E_INVALID, "the CA certificate %s is not valid before %s: is this machine's clock right?",
				   f->cert, date);
	}
	fmt_date(m->ca_not_after, date, sizeof(date));
	if (m->ca_not_after <= now)
		return sbx_err_set(err, SBX_E_INVALID, "the CA certificate %s expired on %s: " CA_FIX, f->cert, date, f->dir);
	if (m->ca_not_after - now < CA_MIN_LEFT_S)
		return sbx_err_set(err, SBX_E_INVALID, "the CA certificate %s expires on %s, in less than 30 days: " CA_FIX, f->cert,
				   date, f->dir);

	/* What sandboxes get to trust: the certificate alone, whatever else the file holds. */
	b = BIO_new(BIO_s_mem());
	if (!b || PEM_write_bio_X509(b, m->ca) != 1 || !(m->ca_pem = pem_string(b))) {
		ossl_err(err, SBX_E_INTERNAL, "cannot encode the CA certificate");
		goto out;
	}
	ret = 0;
out:
	BIO_free(b);
	return ret;
}

/* ---- leaves ---- */

/* Encodes once the extensions every leaf carries. */
static int prepare_leaves(struct sbx_mitm *m, sbx_err *err)
{
	const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(m->ca);
	AUTHORITY_KEYID *akid = NULL;
	X509V3_CTX v3;
	static const struct {
		int nid;
		const char *value;
	} fixed[] = {
		{NID_basic_constraints, "critical,CA:FALSE"},
		{NID_key_usage, "critical,digitalSignature"},
		{NID_ext_key_usage, "serverAuth"},
	};

	X509V3_set_ctx(&v3, m->ca, NULL, NULL, NULL, 0);
	for (size_t i = 0; i < SBX_ARRAY_LEN(fixed); i++) {
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, fixed[i].nid, fixed[i].value);
		if (!ext)
			return ossl_err(err, SBX_E_INTERNAL, "cannot encode a leaf certificate extension");
		m->leaf_ext[m->n_leaf_ext++] = ext;
	}
	/* Chain building matches the leaf's AKI with the CA's SKI; a CA without one (not ours)
	 * simply gets leaves without AKI. */
	if (skid) {
		X509_EXTENSION *ext;
		akid = AUTHORITY_KEYID_new();
		if (!akid || !(akid->keyid = ASN1_OCTET_STRING_dup(skid)) ||
		    !(ext = X509V3_EXT_i2d(NID_authority_key_identifier, 0, akid))) {
			AUTHORITY_KEYID_free(akid);
			return ossl_err(err, SBX_E_INTERNAL, "cannot encode the authority key identifier");
		}
		AUTHORITY_KEYID_free(akid);
		m->leaf_ext[m->n_leaf_ext++] = ext;
	}
	m->keygen = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!m->keygen || EVP_PKEY_keygen_init(m->keygen) != 1 || EVP_PKEY_CTX_set_group_name(m->keygen, "P-256") != 1)
		return ossl_err(err, SBX_E_INTERNAL, "cannot prepare P-256 key generation");
	return 0;
}

static time_t now_s(const struct sbx_mitm *m)
{
	return time(NULL) + m->clock_shift;
}

/* The subject alternative name, built directly (see the top of the file). */
static int add_san(X509 *x, const struct host *h, bool critical)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_STRING *v = h->kind == HOST_DNS ? ASN1_IA5STRING_new() : ASN1_OCTET_STRING_new();
	int ok = 0;

	if (!gens || !g || !v)
		goto out;
	if (h->kind == HOST_DNS) {
		if (ASN1_STRING_set(v, h->name, (int)strlen(h->name)) != 1)
			goto out;
		GENERAL_NAME_set0_value(g, GEN_DNS, v);
	} else {
		if (ASN1_STRING_set(v, h->addr, (int)h->addr_len) != 1)
			goto out;
		GENERAL_NAME_set0_value(g, GEN_IPADD, v);
	}
	v = NULL;
	if (!sk_GENERAL_NAME_push(gens, g))
		goto out;
	g = NULL;
	ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, critical, X509V3_ADD_DEFAULT) == 1;
out:
	ASN1_STRING_free(v);
	GENERAL_NAME_free(g);
	GENERAL_NAMES_free(gens);
	return ok ? 0 : -1;
}

/* A leaf for h, valid from an hour ago for 30 days (never beyond the CA). */
static int mint(struct sbx_mitm *m, const struct host *h, X509 **cert_out, EVP_PKEY **key_out, time_t *not_after_out,
		sbx_err *err)
{
	time_t now = now_s(m), not_after = now + LEAF_VALID_S;
	bool with_cn = strlen(h->name) <= CN_MAX;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	char date[40];

	if (m->ca_not_after - now < LEAF_MIN_LEFT_S) {
		fmt_date(m->ca_not_after, date, sizeof(date));
		return sbx_err_set(err, SBX_E_INVALID, "the proxy CA %s expires on %s: " CA_FIX, m->f.cert, date, m->f.dir);
	}
	if (not_after > m->ca_not_after)
		not_after = m->ca_not_after;
	if (EVP_PKEY_keygen(m->keygen, &key) != 1 || !(x = X509_new()) || X509_set_version(x, X509_VERSION_3) != 1 ||
	    set_random_serial(x) < 0 || !X509_time_adj_ex(X509_getm_notBefore(x), 0, -BACKDATE_S, &now) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), not_after) ||
	    X509_set_issuer_name(x, X509_get_subject_name(m->ca)) != 1 || X509_set_pubkey(x, key) != 1)
		goto fail;
	/* A name longer than a common name may be stays in the SAN alone; with an empty subject
	 * the SAN must be critical (RFC 5280 4.2.1.6). */
	if (with_cn && X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName, MBSTRING_ASC,
						  (const unsigned char *)h->name, -1, -1, 0) != 1)
		goto fail;
	for (size_t i = 0; i < m->n_leaf_ext; i++)
		if (X509_add_ext(x, m->leaf_ext[i], -1) != 1)
			goto fail;
	if (add_san(x, h, !with_cn) < 0 || X509_sign(x, m->ca_key, EVP_sha256()) <= 0)
		goto fail;
	*cert_out = x;
	*key_out = key;
	*not_after_out = not_after;
	return 0;
fail:
	X509_free(x);
	EVP_PKEY_free(key);
	return ossl_err(err, SBX_E_INTERNAL, "cannot mint a certificate");
}

/* ---- the cache ---- */

/* FNV-1a with a per-process seed. Chains are bounded by the cache size anyway; the seed only
 * keeps a sandbox from lining every name up in one bucket cheaply. */
static uint64_t host_hash(const struct sbx_mitm *m, const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ m->hash_seed;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static struct leaf **bucket_slot(struct sbx_mitm *m, const char *host, uint64_t hash)
{
	struct leaf **pp = &m->buckets[hash & (NBUCKETS - 1)];

	while (*pp && ((*pp)->hash != hash || strcmp((*pp)->host, host) != 0))
		pp = &(*pp)->hnext;
	return pp;
}

static void lru_unlink(struct sbx_mitm *m, struct leaf *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		m->head = l->next;
	if (l->next)
		l->next->prev = l->prev;
	else
		m->tail = l->prev;
	l->prev = l->next = NULL;
}

static void lru_push_front(struct sbx_mitm *m, struct leaf *l)
{
	l->prev = NULL;
	l->next = m->head;
	if (m->head)
		m->head->prev = l;
	m->head = l;
	if (!m->tail)
		m->tail = l;
}

static void leaf_free(struct leaf *l)
{
	X509_free(l->cert);
	EVP_PKEY_free(l->key);
	free(l);
}

static void evict_lru(struct sbx_mitm *m)
{
	struct leaf *l = m->tail, **pp;

	if (!l)
		return;
	pp = bucket_slot(m, l->host, l->hash);
	*pp = l->hnext;
	lru_unlink(m, l);
	m->count--;
	leaf_free(l);
}

/* The cached leaf for host, minted (again) when missing or within a day of expiry. The entry
 * stays owned by the cache. */
static struct leaf *get_leaf(struct sbx_mitm *m, const char *host, sbx_err *err)
{
	struct host h;
	struct leaf *l, **bucket;
	uint64_t hash;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	time_t not_after = 0;
	size_t n;

	if (host_canon(host, &h, err) < 0)
		return NULL;
	hash = host_hash(m, h.name);
	l = *bucket_slot(m, h.name, hash);
	if (l && l->not_after - now_s(m) >= LEAF_MIN_LEFT_S) {
		m->hits++;
		lru_unlink(m, l);
		lru_push_front(m, l);
		return l;
	}
	if (mint(m, &h, &cert, &key, &not_after, err) < 0)
		return NULL;
	m->minted++;
	if (l) {
		/* Connections still using the old leaf hold their own references to it. */
		X509_free(l->cert);
		EVP_PKEY_free(l->key);
		l->cert = cert;
		l->key = key;
		l->not_after = not_after;
		lru_unlink(m, l);
		lru_push_front(m, l);
		return l;
	}
	n = strlen(h.name);
	l = calloc(1, sizeof(*l) + n + 1);
	if (!l) {
		X509_free(cert);
		EVP_PKEY_free(key);
		sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
		return NULL;
	}
	memcpy(l->host, h.name, n + 1);
	l->hash = hash;
	l->cert = cert;
	l->key = key;
	l->not_after = not_after;
	if (m->count >= m->cap)
		evict_lru(m);
	/* The bucket head is looked up after the eviction, which may have changed that chain. */
	bucket = &m->buckets[hash & (NBUCKETS - 1)];
	l->hnext = *bucket;
	*bucket = l;
	lru_push_front(m, l);
	m->count++;
	return l;
}

/* ---- the server side ---- */

/* http/1.1 or nothing: the proxy speaks HTTP/1.1 only, so a client offering h2 and http/1.1
 * falls back, and one offering neither gets no_application_protocol (RFC 7301 3.2) rather than
 * a connection it would misread. No ALPN from the client: no callback, plain HTTP/1.1. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	for (unsigned int i = 0; i < inlen;) {
		unsigned int n = in[i];
		if (n == 0 || n > inlen - i - 1)
			break;
		if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = 8;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int make_server_ctx(struct sbx_mitm *m, sbx_err *err)
{
	m->ctx = SSL_CTX_new(TLS_server_method());
	if (!m->ctx || SSL_CTX_set_min_proto_version(m->ctx, TLS1_2_VERSION) != 1)
		return ossl_err(err, SBX_E_INTERNAL, "cannot create the TLS server context");
	/* Each connection is its own: no resumption state to keep or bound, no renegotiation. */
	SSL_CTX_set_options(m->ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_num_tickets(m->ctx, 0);
	SSL_CTX_set_session_cache_mode(m->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(m->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_NO_AUTO_CHAIN);
	SSL_CTX_set_alpn_select_cb(m->ctx, alpn_select, NULL);
	return 0;
}

SSL *sbx_mitm_server_ssl(struct sbx_mitm *m, int fd, const char *host, sbx_err *err)
{
	struct leaf *l = get_leaf(m, host, err);
	SSL *ssl;

	if (!l)
		return NULL;
	ssl = SSL_new(m->ctx);
	if (!ssl || SSL_use_certificate(ssl, l->cert) != 1 || SSL_use_PrivateKey(ssl, l->key) != 1 ||
	    SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		ossl_err(err, SBX_E_INTERNAL, "cannot set up the TLS server connection");
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

X509 *sbx_mitm_leaf(struct sbx_mitm *m, const char *host, sbx_err *err)
{
	struct leaf *l = get_leaf(m, host, err);

	if (!l)
		return NULL;
	X509_up_ref(l->cert);
	return l->cert;
}

void sbx_mitm_stats(const struct sbx_mitm *m, unsigned long *minted, unsigned long *hits)
{
	if (minted)
		*minted = m->minted;
	if (hits)
		*hits = m->hits;
}

/* ---- open / free ---- */

static bool path_exists(const char *path)
{
	struct stat st;

	/* Anything but "no such file" counts as present: reading it will say what is wrong. */
	return lstat(path, &st) == 0 || errno != ENOENT;
}

int sbx_mitm_open(const char *dir, struct sbx_mitm **out, sbx_err *err)
{
	struct sbx_mitm *m = calloc(1, sizeof(*m));
	bool have_key, have_cert;

	if (!m)
		return sbx_err_set(err, SBX_E_INTERNAL, "out of memory");
	m->cap = SBX_MITM_CACHE;
	if (set_files(&m->f, dir, err) < 0 || ensure_dir(&m->f, err) < 0)
		goto fail;
	have_key = path_exists(m->f.key);
	have_cert = path_exists(m->f.cert);
	if (!have_key && !have_cert) {
		if (create_ca(&m->f, -BACKDATE_S, CA_VALID_S, err) < 0) {
			sbx_err_wrap(err, "creating the proxy CA in %s", m->f.dir);
			goto fail;
		}
	} else if (!have_key || !have_cert) {
		sbx_err_set(err, SBX_E_NOINPUT, "the proxy CA in %s is incomplete: %s is missing. Restore it, or " CA_FIX,
			    m->f.dir, have_key ? m->f.cert : m->f.key, m->f.dir);
		goto fail;
	}
	/* A CA just created goes through the same checks: what is on disk is what gets used. */
	if (load_ca(m, err) < 0 || prepare_leaves(m, err) < 0 || make_server_ctx(m, err) < 0)
		goto fail;
	if (sbx_random_bytes(&m->hash_seed, sizeof(m->hash_seed)) < 0) {
		sbx_err_sys(err, SBX_E_INTERNAL, errno, "getrandom");
		goto fail;
	}
	*out = m;
	return 0;
fail:
	ERR_clear_error();
	sbx_mitm_free(m);
	return -1;
}

void sbx_mitm_free(struct sbx_mitm *m)
{
	struct leaf *l, *next;

	if (!m)
		return;
	for (l = m->head; l; l = next) {
		next = l->next;
		leaf_free(l);
	}
	for (size_t i = 0; i < m->n_leaf_ext; i++)
		X509_EXTENSION_free(m->leaf_ext[i]);
	EVP_PKEY_CTX_free(m->keygen);
	SSL_CTX_free(m->ctx);
	X509_free(m->ca);
	EVP_PKEY_free(m->ca_key);
	free(m->ca_pem);
	free(m);
}

const char *sbx_mitm_ca_path(const struct sbx_mitm *m)
{
	return m->f.cert;
}

const char *sbx_mitm_ca_pem(const struct sbx_mitm *m)
{
	return m->ca_pem;
}

/* ---- test hooks ---- */

int sbx_mitm_test_create_ca(const char *dir, long not_before_s, long not_after_s, sbx_err *err)
{
	struct ca_files f;

	if (set_files(&f, dir, err) < 0 || ensure_dir(&f, err) < 0)
		return -1;
	return create_ca(&f, not_before_s, not_after_s, err);
}

void sbx_mitm_test_set_cache_cap(struct sbx_mitm *m, unsigned cap)
{
	m->cap = cap < 1 ? 1 : cap > SBX_MITM_CACHE ? SBX_MITM_CACHE : cap;
	while (m->count > m->cap)
		evict_lru(m);
}

void sbx_mitm_test_shift_clock(struct sbx_mitm *m, long seconds)
{
	m->clock_shift = seconds;
}
