// The `azure:` repository location: `azure:ACCOUNT/CONTAINER[/PREFIX]`, a container of an Azure
// Storage account and an optional folder in it (as restic writes it, with the account in front).
// The account's blob endpoint is `https://ACCOUNT.blob.core.windows.net` unless the environment
// names another one (AZURE_STORAGE_ENDPOINT, or a connection string's BlobEndpoint: Azurite, a
// sovereign cloud, a private endpoint); credentials never appear in the location.
import { SnapError } from '../core/errors.js';
import { isBlobName } from './names.js';

export interface AzureLocation {
  account: string;
  container: string;
  /** Blob name prefix of every blob: '' or a folder ending in '/'. */
  prefix: string;
}

export const AZURE_SCHEME = 'azure:';

/** Azure's rules: an account is 3-24 lowercase letters and digits. */
const ACCOUNT = /^[a-z0-9]{3,24}$/;
/** A container is 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit. */
const CONTAINER = /^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$/;

export function isAzureLocation(s: string): boolean {
  return s.startsWith(AZURE_SCHEME);
}

function bad(s: string, why: string): SnapError {
  const shown = s.replace(/[?#].*$/, '?***'); // a SAS token pasted into it is never echoed
  return new SnapError('SNAP_USAGE', `not an Azure location: ${JSON.stringify(shown)}: ${why} (expected azure:ACCOUNT/CONTAINER[/PREFIX])`);
}

export function parseAzureLocation(s: string): AzureLocation {
  if (!isAzureLocation(s)) throw bad(s, `it does not start with ${AZURE_SCHEME}`);
  const rest = s.slice(AZURE_SCHEME.length);
  if (/[?#]/.test(rest)) throw bad(s, 'a query (?) or fragment (#) has no place in it: give a SAS token in AZURE_STORAGE_SAS_TOKEN');
  if (rest.startsWith('//') || /^https?:/i.test(rest)) throw bad(s, 'it names the account, not a URL: set AZURE_STORAGE_ENDPOINT for an endpoint of your own');
  if (rest.includes('@')) throw bad(s, 'credentials do not belong in the location: use the AZURE_STORAGE_* environment variables');
  const parts = rest.replace(/\/+$/, '').split('/');
  const account = parts.shift() ?? '';
  const container = parts.shift() ?? '';
  if (!ACCOUNT.test(account)) throw bad(s, `${JSON.stringify(account)} is not a storage account name (3-24 lowercase letters and digits)`);
  if (container === '') throw bad(s, 'a container is needed after the account');
  if (!CONTAINER.test(container)) {
    throw bad(s, `${JSON.stringify(container)} is not a valid container name (3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit)`);
  }
  const prefixPath = parts.join('/');
  if (prefixPath !== '' && (!isBlobName(prefixPath) || prefixPath.length > 256)) {
    throw bad(s, `the prefix ${JSON.stringify(prefixPath)} must be folder names of letters, digits and -_.~+=,@ (none starting with a dot), at most 256 characters`);
  }
  return { account, container, prefix: prefixPath === '' ? '' : `${prefixPath}/` };
}

/** The location as the user writes it. */
export function formatAzureLocation(l: AzureLocation): string {
  return `${AZURE_SCHEME}${l.account}/${l.container}${l.prefix === '' ? '' : `/${l.prefix.slice(0, -1)}`}`;
}
