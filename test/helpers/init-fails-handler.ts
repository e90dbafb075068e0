// A handler module whose init() fails (test/worker-handler.test.ts).
import { defineHandler } from '../../src/handler/define.js';

export default defineHandler({
  init() {
    throw new Error('init failed on purpose');
  },
  dispatch() {},
});
