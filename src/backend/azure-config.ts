// How to reach and sign in to an Azure Storage account, as a pure function of the environment
// (only cli/ reads process.env and calls this). The variables are the ones the Azure CLI and
// SDK samples use:
//
// Credentials, first match wins:
//   1. AZURE_STORAGE_CONNECTION_STRING: a connection string (AccountName + AccountKey, or
//      SharedAccessSignature; its BlobEndpoint, when it has one, is the endpoint);
//   2. AZURE_STORAGE_SAS_TOKEN: a shared access signature (`sv=...&sig=...`, with or without `?`);
//   3. AZURE_STORAGE_KEY: the account's shared key;
//   4. otherwise DefaultAzureCredential from @azure/identity (AZURE_CLIENT_ID/AZURE_TENANT_ID/
//      AZURE_CLIENT_SECRET or a certificate, workload identity, a managed identity, `az login`,
//      ...): Microsoft Entra ID sign-in, which needs an https endpoint.
// Endpoint: AZURE_STORAGE_ENDPOINT (the account's blob service URL, e.g.
// `http://127.0.0.1:10000/devstoreaccount1` for Azurite), else the connection string's
// BlobEndpoint, else `https://ACCOUNT.blob.core.windows.net`.
import { SnapError } from '../core/errors.js';

export type AzureAuth =
  | { kind: 'connection-string'; connectionString: string }
  | { kind: 'sas'; token: string }
  | { kind: 'key'; key: string }
  | { kind: 'default' };

export interface AzureSettings {
  auth: AzureAuth;
  /** The account's blob service URL, when the environment names one. */
  endpoint?: string;
}

/** The account's blob service URL checked: http(s), no credentials, query or fragment in it (a SAS goes in AZURE_STORAGE_SAS_TOKEN). */
export function checkAzureEndpoint(text: string, from = 'AZURE_STORAGE_ENDPOINT'): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SnapError('SNAP_USAGE', `${from} is not a URL (expected https://HOST[:PORT][/PATH], e.g. http://127.0.0.1:10000/devstoreaccount1 for Azurite)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new SnapError('SNAP_USAGE', `${from} must start with https:// or http://`);
  if (url.username || url.password || url.search || url.hash) {
    throw new SnapError('SNAP_USAGE', `${from} must not hold credentials or a query: give a SAS token in AZURE_STORAGE_SAS_TOKEN`);
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

export function readAzureSettings(env: NodeJS.ProcessEnv): AzureSettings {
  const endpointText = env.AZURE_STORAGE_ENDPOINT?.trim();
  const endpoint = endpointText ? checkAzureEndpoint(endpointText) : undefined;
  const cs = env.AZURE_STORAGE_CONNECTION_STRING?.trim();
  if (cs) return { auth: { kind: 'connection-string', connectionString: cs }, endpoint };
  const sas = env.AZURE_STORAGE_SAS_TOKEN?.trim();
  if (sas) return { auth: { kind: 'sas', token: sas.replace(/^\?/, '') }, endpoint };
  const key = env.AZURE_STORAGE_KEY?.trim();
  if (key) return { auth: { kind: 'key', key }, endpoint };
  return { auth: { kind: 'default' }, endpoint };
}

/** Never a secret in a message: a SAS signature or an account key that an error text might carry. */
export function redactAzure(text: string): string {
  return text.replace(/\b(sig|AccountKey|SharedAccessSignature)=[^&;\s"']+/gi, '$1=***');
}
