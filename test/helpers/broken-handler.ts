// A handler module that fails while it is imported (test/worker-handler.test.ts).
throw new Error('broken on purpose');
