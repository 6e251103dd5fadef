// The conformance suite against S3Backend on a real Ceph radosgw (test/helpers/radosgw.ts),
// each test under its own key prefix in one bucket.
import { beforeAll } from 'vitest';
import { backendConformance } from './conformance.js';
import { type S3Target, s3Target } from '../helpers/s3-target.js';

let target: S3Target | undefined;
beforeAll(async () => {
  target = await s3Target('conformance');
}, 900_000);

backendConformance('S3Backend on radosgw', {
  unavailable: () => (typeof target?.info === 'string' ? target.info : undefined),
  async make() {
    return target!.backend();
  },
});
