// The storage of a repository location (repo/location.ts): a local folder is opened by the
// repository itself; a remote one gets its backend here, from the environment the CLI hands in
// (only cli/ reads process.env): S3 credentials and region as the AWS tools find them (backend/aws-config.ts),
// Azure credentials and endpoint from the AZURE_STORAGE_* variables (backend/azure-config.ts),
// the ssh program for SFTP (SNAP_SSH_COMMAND), and the cache folder that holds the index of a
// remote repository ($XDG_CACHE_HOME/snap, docs/remote.md).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Backend } from '../backend/backend.js';
import { readAwsSettings } from '../backend/aws-config.js';
import { readAzureSettings } from '../backend/azure-config.js';
import type { RepoLocation } from './location.js';
import type { RemoteStorage } from './repository.js';

/** The environment variables this module reads (the CLI passes process.env). */
export type Env = Record<string, string | undefined>;

/**
 * This user's cache folder: SNAP_CACHE_DIR, else `$XDG_CACHE_HOME/snap`, else `~/.cache/snap`. The
 * index of an encrypted or remote repository lives under it, and the repositories this machine
 * has opened are remembered there (known/).
 */
export function cacheRoot(env: Env): string {
  const own = env.SNAP_CACHE_DIR;
  if (own && path.isAbsolute(own)) return own;
  const xdg = env.XDG_CACHE_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache'), 'snap');
}

function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * SNAP_SSH_COMMAND: the ssh program and options to run for sftp: locations, split at spaces
 * (no shell quoting), e.g. `ssh -F /etc/snap/ssh_config`; snap appends its own options.
 */
function sshCommand(env: Env): string[] | undefined {
  const v = env.SNAP_SSH_COMMAND?.trim();
  if (!v) return undefined;
  return v.split(/\s+/);
}

/**
 * What Repository.open/init need for a remote location, its backend not yet connected (S3, Azure
 * and SFTP connect on first use); undefined for a local folder. Each backend's module is loaded
 * here, when a location names it: a command on a local repository does not pay for loading them
 * (docs/performance.md, "Before and after the architecture issue").
 */
export async function remoteStorage(loc: RepoLocation, env: Env, stop?: AbortSignal): Promise<RemoteStorage | undefined> {
  // A stopped command (Ctrl-C, SIGTERM) retries nothing (backend/retry.ts, `stop`).
  const retry = stop ? { stop } : undefined;
  const storage = (backend: Backend, prepare?: () => Promise<void>): RemoteStorage => ({ backend, cacheRoot: cacheRoot(env), prepare });
  if (loc.kind === 's3') {
    const { S3Backend } = await import('../backend/s3.js');
    const aws = readAwsSettings(env, readText);
    const backend = new S3Backend({ location: loc.s3, credentials: aws.credentials, region: aws.region, retry });
    return storage(backend, async () => void (await backend.ensureBucket()));
  }
  if (loc.kind === 'azure') {
    const { AzureBackend } = await import('../backend/azure.js');
    const azure = readAzureSettings(env);
    const backend = new AzureBackend({ location: loc.azure, auth: azure.auth, endpoint: azure.endpoint, retry });
    return storage(backend, async () => void (await backend.ensureContainer()));
  }
  if (loc.kind === 'sftp') {
    const { SftpBackend } = await import('../backend/sftp.js');
    return storage(new SftpBackend(loc.sftp, { sshCommand: sshCommand(env), retry }));
  }
  return undefined;
}

/**
 * Where a scheduled run of a command on `loc` finds its credentials, in words for `schedule add`
 * (docs/automation.md): a schedule never holds a secret, and the scheduler (a systemd user unit,
 * cron) gives the run little more than HOME, none of the variables of the shell that added it. So
 * S3 keys must be in the shared credentials or config file; `warning` says when they are not
 * there (this shell has them from the environment only). Undefined for a local folder.
 */
export function scheduledCredentials(loc: RepoLocation, env: Env): { note: string; warning?: string } | undefined {
  if (loc.kind === 's3') {
    const note =
      'the scheduled run reads S3 credentials as every snap command does: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from its environment (the scheduler sets neither), ' +
      'else the profile default in ~/.aws/credentials or ~/.aws/config; no credential is written into the schedule';
    const home = env.HOME ?? os.homedir();
    try {
      readAwsSettings({ HOME: home }, readText);
      return { note };
    } catch {
      return { note, warning: `a scheduled run would find no S3 credentials (in ${path.join(home, '.aws', 'credentials')} or ${path.join(home, '.aws', 'config')}): put the keys there, under [default]` };
    }
  }
  if (loc.kind === 'azure') {
    return {
      note:
        'the scheduled run reads Azure credentials from AZURE_STORAGE_* in its environment, which the scheduler does not set (a systemd drop-in with EnvironmentFile= can), ' +
        'else DefaultAzureCredential (a managed identity, a service principal, az login); no credential is written into the schedule',
    };
  }
  if (loc.kind === 'sftp') {
    return { note: 'the scheduled run runs ssh as you do (~/.ssh/config, key files, known_hosts); a key that only your ssh agent holds needs SSH_AUTH_SOCK, which the scheduler does not set; no credential is written into the schedule' };
  }
  return undefined;
}
