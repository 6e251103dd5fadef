// Credentials and region for S3, found the way the AWS CLI and SDKs find them, as a pure
// function of the environment and a file reader (only cli/ reads process.env and calls this).
//
// Credentials, first match wins:
//   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) in the environment;
//   2. the profile (AWS_PROFILE, else `default`) in the shared credentials file
//      (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials): aws_access_key_id,
//      aws_secret_access_key, aws_session_token;
//   3. the same keys in that profile of the config file (AWS_CONFIG_FILE, else ~/.aws/config),
//      where a profile's section is `[profile NAME]` (and `[default]` for the default one).
// Region: AWS_REGION, else AWS_DEFAULT_REGION, else `region` in the profile of the config file
// (else of the credentials file), else us-east-1 (what S3-compatible servers such as Ceph and
// MinIO accept by default).
// Not supported: SSO, assume-role (role_arn / source_profile), credential_process, instance
// metadata; a profile that uses them and has no keys is reported as such.
import { SnapError } from '../core/errors.js';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface AwsSettings {
  credentials: AwsCredentials;
  region: string;
  /** Where the credentials came from, for messages (never the secret itself). */
  source: string;
}

/** Returns a file's text, or undefined when it does not exist. */
export type ReadTextFile = (path: string) => string | undefined;

export const DEFAULT_REGION = 'us-east-1';

type Ini = Map<string, Map<string, string>>;

/** The INI dialect of the AWS files: `[section]`, `key = value`, `#`/`;` comments; nested (indented) sub-settings are skipped. */
export function parseAwsIni(text: string): Ini {
  const out: Ini = new Map();
  let section: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*([#;]|$)/.test(raw)) continue;
    const head = /^\s*\[([^\]]+)\]\s*(?:[#;].*)?$/.exec(raw);
    if (head) {
      const name = head[1]!.trim().replace(/\s+/g, ' ');
      section = out.get(name) ?? new Map();
      out.set(name, section);
      continue;
    }
    if (/^\s/.test(raw)) continue; // a nested value (s3 = \n  max_concurrent_requests = ...)
    const kv = /^([^=]+?)\s*=\s*(.*?)\s*$/.exec(raw);
    if (kv && section) section.set(kv[1]!.trim().toLowerCase(), kv[2]!);
  }
  return out;
}

function home(env: Record<string, string | undefined>): string {
  return env.HOME ?? '';
}

export function readAwsSettings(env: Record<string, string | undefined>, readFile: ReadTextFile): AwsSettings {
  const profile = env.AWS_PROFILE || env.AWS_DEFAULT_PROFILE || 'default';
  const credPath = env.AWS_SHARED_CREDENTIALS_FILE || `${home(env)}/.aws/credentials`;
  const confPath = env.AWS_CONFIG_FILE || `${home(env)}/.aws/config`;
  const load = (p: string): Ini => {
    const text = readFile(p);
    return text === undefined ? new Map() : parseAwsIni(text);
  };
  const creds = load(credPath).get(profile);
  const confIni = load(confPath);
  const conf = profile === 'default' ? (confIni.get('default') ?? confIni.get('profile default')) : confIni.get(`profile ${profile}`);
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || conf?.get('region') || creds?.get('region') || DEFAULT_REGION;

  if (env.AWS_ACCESS_KEY_ID || env.AWS_SECRET_ACCESS_KEY) {
    if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) {
      throw new SnapError('SNAP_USAGE', `${env.AWS_ACCESS_KEY_ID ? 'AWS_SECRET_ACCESS_KEY' : 'AWS_ACCESS_KEY_ID'} is not set, but ${env.AWS_ACCESS_KEY_ID ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY'} is: set both (or neither, to use ~/.aws/credentials)`);
    }
    return { credentials: withToken(env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN), region, source: 'the environment (AWS_ACCESS_KEY_ID)' };
  }
  for (const [section, where] of [[creds, credPath], [conf, confPath]] as const) {
    const id = section?.get('aws_access_key_id');
    const secret = section?.get('aws_secret_access_key');
    if (id && secret) return { credentials: withToken(id, secret, section?.get('aws_session_token')), region, source: `profile ${profile} in ${where}` };
    if (id || secret) throw new SnapError('SNAP_USAGE', `profile ${profile} in ${where} has ${id ? 'aws_access_key_id but no aws_secret_access_key' : 'aws_secret_access_key but no aws_access_key_id'}`);
  }
  const unsupported = ['role_arn', 'sso_session', 'sso_start_url', 'credential_process', 'web_identity_token_file'].find((k) => conf?.has(k) || creds?.has(k));
  if (unsupported) {
    throw new SnapError('SNAP_USAGE', `profile ${profile} gets its credentials through ${unsupported}, which snap does not support: give it aws_access_key_id and aws_secret_access_key, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`);
  }
  const looked = env.AWS_PROFILE || env.AWS_DEFAULT_PROFILE ? `profile ${profile} (AWS_PROFILE)` : 'profile default';
  throw new SnapError('SNAP_USAGE', `no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put ${looked} into ${credPath}`);
}

function withToken(accessKeyId: string, secretAccessKey: string, sessionToken: string | undefined): AwsCredentials {
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
}
