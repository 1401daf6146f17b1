// The OpenLayers sources the web app uses (the full ol/source.js pulls in GeoTIFF, Zarr and OGC readers).
export { default as Vector } from 'ol/source/Vector.js';
export { default as ImageStatic } from 'ol/source/ImageStatic.js';
export { default as XYZ } from 'ol/source/XYZ.js';
export { default as TileImage } from 'ol/source/TileImage.js';
export { default as ImageCanvas } from 'ol/source/ImageCanvas.js';
