// Repository locations on S3-compatible storage: `s3:https://HOST[:PORT]/BUCKET[/PREFIX]`
// (`s3:http://` for a server on a trusted network, such as a local test gateway). Requests use
// path-style addressing (`https://HOST/BUCKET/KEY`), which every S3-compatible server accepts;
// the bucket is never put into the host name, so bucket names with dots work over TLS.
import { SnapError } from '../core/errors.js';
import { isBlobName } from './names.js';

export interface S3Location {
  /** `http:` or `https:`. */
  protocol: 'http:' | 'https:';
  /** Host name or address, with `:port` when one was given. */
  host: string;
  bucket: string;
  /** Key prefix of every blob: '' or a folder ending in '/'. */
  prefix: string;
}

/** The S3 bucket naming rules: 3-63 lowercase letters, digits, dots and hyphens, starting and ending alphanumeric, not an IP address. */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function isS3Location(s: string): boolean {
  return s.startsWith('s3:');
}

function bad(s: string, why: string): SnapError {
  const shown = s.replace(/\/\/[^/]*@/, '//***@'); // never echo a secret someone put into it
  return new SnapError('SNAP_USAGE', `not an S3 location: ${JSON.stringify(shown)}: ${why} (expected s3:https://HOST[:PORT]/BUCKET[/PREFIX])`);
}

export function parseS3Location(s: string): S3Location {
  if (!isS3Location(s)) throw bad(s, 'it does not start with s3:');
  const rest = s.slice(3);
  if (/[?#]/.test(rest)) throw bad(s, 'a query (?) or fragment (#) has no place in it');
  const m = /^(https?):\/\/([^/?#]+)\/([^?#]*)$/.exec(rest);
  if (!m) throw bad(s, rest.startsWith('http') ? 'a bucket is needed after the host' : 'the endpoint must start with http:// or https://');
  const [, scheme, authority, pathPart] = m as unknown as [string, string, string, string];
  if (authority.includes('@')) throw bad(s, 'credentials do not belong in the location; use the AWS environment variables or ~/.aws/credentials');
  let url: URL;
  try {
    url = new URL(`${scheme}://${authority}/`);
  } catch {
    throw bad(s, `${JSON.stringify(authority)} is not a host name with an optional port`);
  }
  if (url.username || url.password || url.hostname === '') throw bad(s, 'no host');
  const parts = pathPart.replace(/\/+$/, '').split('/');
  const bucket = parts.shift() ?? '';
  if (!BUCKET.test(bucket) || bucket.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(bucket)) {
    throw bad(s, `${JSON.stringify(bucket)} is not a valid bucket name (3-63 lowercase letters, digits, dots and hyphens)`);
  }
  const prefixPath = parts.join('/');
  if (prefixPath !== '' && (!isBlobName(prefixPath) || prefixPath.length > 256)) {
    throw bad(s, `the prefix ${JSON.stringify(prefixPath)} must be folder names of letters, digits and -_.~+=,@ (none starting with a dot), at most 256 characters`);
  }
  return { protocol: url.protocol as 'http:' | 'https:', host: url.host, bucket, prefix: prefixPath === '' ? '' : `${prefixPath}/` };
}

/** The location as the user writes it (never with credentials: they are not part of it). */
export function formatS3Location(l: S3Location): string {
  return `s3:${l.protocol}//${l.host}/${l.bucket}${l.prefix === '' ? '' : `/${l.prefix.slice(0, -1)}`}`;
}
