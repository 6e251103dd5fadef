// The few S3 XML documents snap reads and writes. Their shapes are flat and fixed (a list
// result is a sequence of <Contents> with <Key> and <Size>; an error has <Code> and
// <Message>), so a small tag reader suffices; anything that does not have the expected shape
// is reported, never guessed at. Keys are requested URL-encoded (encoding-type=url), so no key
// depends on how a server escapes XML.
export function xmlUnescape(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, e: string) => {
    switch (e) {
      case 'amp': return '&';
      case 'lt': return '<';
      case 'gt': return '>';
      case 'quot': return '"';
      case 'apos': return "'";
      default: return String.fromCodePoint(e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}

function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** The text of every `<tag>…</tag>` in `xml`, in order (tags of this name must not nest). */
export function xmlAll(xml: string, tag: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, 'g');
  for (let m = re.exec(xml); m; m = re.exec(xml)) out.push(m[1]!);
  return out;
}

export function xmlOne(xml: string, tag: string): string | undefined {
  const all = xmlAll(xml, tag);
  return all.length > 0 ? xmlUnescape(all[0]!) : undefined;
}

export interface S3ErrorBody {
  code?: string;
  message?: string;
}

/** <Error><Code>…</Code><Message>…</Message></Error>, or nothing if the body is not one. */
export function parseErrorBody(xml: string): S3ErrorBody | undefined {
  const err = xmlAll(xml, 'Error')[0];
  if (err === undefined) return undefined;
  return { code: xmlOne(err, 'Code'), message: xmlOne(err, 'Message') };
}

export interface ListPage {
  entries: { key: string; size: number }[];
  /** Set when more pages follow. */
  nextToken?: string;
}

export class XmlShapeError extends Error {}

export function parseListPage(xml: string): ListPage {
  if (!/<ListBucketResult[\s>]/.test(xml)) throw new XmlShapeError('not a ListBucketResult');
  const urlEncoded = xmlOne(xml, 'EncodingType')?.toLowerCase() === 'url';
  const entries = xmlAll(xml, 'Contents').map((c) => {
    const rawKey = xmlOne(c, 'Key');
    const size = Number(xmlOne(c, 'Size'));
    if (rawKey === undefined || !Number.isSafeInteger(size) || size < 0) throw new XmlShapeError('a <Contents> without a <Key> or a valid <Size>');
    return { key: urlEncoded ? decodeURIComponent(rawKey.replace(/\+/g, ' ')) : rawKey, size };
  });
  const truncated = xmlOne(xml, 'IsTruncated') === 'true';
  const nextToken = xmlOne(xml, 'NextContinuationToken');
  if (truncated && !nextToken) throw new XmlShapeError('IsTruncated without a NextContinuationToken');
  return truncated ? { entries, nextToken } : { entries };
}

export function parseUploadId(xml: string): string {
  const id = xmlOne(xml, 'UploadId');
  if (!id) throw new XmlShapeError('no <UploadId> in the answer to CreateMultipartUpload');
  return id;
}

export function completeMultipartBody(parts: { partNumber: number; etag: string }[]): string {
  const items = parts.map((p) => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${xmlEscape(p.etag)}</ETag></Part>`);
  return `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${items.join('')}</CompleteMultipartUpload>`;
}

export function createBucketBody(region: string): string {
  return `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>${xmlEscape(region)}</LocationConstraint></CreateBucketConfiguration>`;
}
