// --import this to load the CLI with slow-program-hooks.mjs.
import { register } from 'node:module';

register(new URL('./slow-program-hooks.mjs', import.meta.url));
