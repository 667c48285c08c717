import { defineConfig } from 'vite';

// Relative asset URLs: the build works at / (octoscope serve) and under any prefix (S3, a proxy).
export default defineConfig({
  base: './',
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 600 },
  // `npm run dev` proxies the API to a local `octoscope serve`.
  server: {
    proxy: {
      '/api': process.env.OCTOSCOPE_URL || 'http://127.0.0.1:8080',
      '/webhook': process.env.OCTOSCOPE_URL || 'http://127.0.0.1:8080',
    },
  },
});
