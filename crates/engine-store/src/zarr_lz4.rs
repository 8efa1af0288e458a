//! numcodecs' standalone `lz4` compressor for zarr v2, which zarrs does not ship.
//!
//! numcodecs frames each chunk as a little-endian `u32` of the decoded size followed by one
//! LZ4 block (`numcodecs/lz4.pyx`), which is exactly lz4_flex's "size prepended" format.
//! Blosc's internal lz4 is a different thing and is handled by zarrs' blosc codec.

use std::borrow::Cow;
use std::sync::{Arc, Once};
use zarrs_codec::{
    ArrayBytesRaw, BytesRepresentation, BytesToBytesCodecTraits, Codec, CodecError,
    CodecMetadataOptions, CodecOptions, CodecRuntimePluginV2, CodecTraits,
    PartialDecoderCapability, PartialEncoderCapability, RecommendedConcurrency,
};
use zarrs_metadata::Configuration;
use zarrs_plugin::{ExtensionName, ZarrVersion};

/// The numcodecs `lz4` codec (decoding and encoding).
#[derive(Debug, Clone, Default)]
pub struct Lz4Codec {
    acceleration: i64,
}

impl ExtensionName for Lz4Codec {
    fn name(&self, version: ZarrVersion) -> Option<Cow<'static, str>> {
        match version {
            ZarrVersion::V2 => Some(Cow::Borrowed("lz4")),
            ZarrVersion::V3 => Some(Cow::Borrowed("numcodecs.lz4")),
        }
    }
}

impl CodecTraits for Lz4Codec {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn configuration(
        &self,
        _version: ZarrVersion,
        _options: &CodecMetadataOptions,
    ) -> Option<Configuration> {
        let mut m = serde_json::Map::new();
        m.insert("acceleration".into(), self.acceleration.into());
        Some(m.into())
    }

    fn partial_decoder_capability(&self) -> PartialDecoderCapability {
        PartialDecoderCapability {
            partial_read: false,
            partial_decode: false,
        }
    }

    fn partial_encoder_capability(&self) -> PartialEncoderCapability {
        PartialEncoderCapability {
            partial_encode: false,
        }
    }
}

impl BytesToBytesCodecTraits for Lz4Codec {
    fn into_dyn(self: Arc<Self>) -> Arc<dyn BytesToBytesCodecTraits> {
        self
    }

    fn recommended_concurrency(
        &self,
        _decoded: &BytesRepresentation,
    ) -> Result<RecommendedConcurrency, CodecError> {
        Ok(RecommendedConcurrency::new_maximum(1))
    }

    fn encoded_representation(&self, decoded: &BytesRepresentation) -> BytesRepresentation {
        decoded
            .size()
            .map_or(BytesRepresentation::UnboundedSize, |n| {
                BytesRepresentation::BoundedSize(
                    4 + lz4_flex::block::get_maximum_output_size(n as usize) as u64,
                )
            })
    }

    fn encode<'a>(
        &self,
        decoded: ArrayBytesRaw<'a>,
        _options: &CodecOptions,
    ) -> Result<ArrayBytesRaw<'a>, CodecError> {
        Ok(Cow::Owned(lz4_flex::block::compress_prepend_size(&decoded)))
    }

    fn decode<'a>(
        &self,
        encoded: ArrayBytesRaw<'a>,
        _decoded: &BytesRepresentation,
        _options: &CodecOptions,
    ) -> Result<ArrayBytesRaw<'a>, CodecError> {
        let declared = encoded
            .get(..4)
            .map(|h| u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize);
        let out = lz4_flex::block::decompress_size_prepended(&encoded)
            .map_err(|e| CodecError::Other(format!("corrupt lz4 chunk: {e}")))?;
        if declared != Some(out.len()) {
            return Err(CodecError::Other(format!(
                "corrupt lz4 chunk: {} bytes decoded, header says {declared:?}",
                out.len()
            )));
        }
        Ok(Cow::Owned(out))
    }
}

/// Registers the codec with zarrs once per process.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let plugin = CodecRuntimePluginV2::new(
            |name: &str| name == "lz4",
            |meta: &zarrs_metadata::v2::MetadataV2| {
                let acceleration = meta
                    .configuration()
                    .get("acceleration")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(1);
                Ok(Codec::BytesToBytes(Arc::new(Lz4Codec { acceleration })))
            },
        );
        // The handle unregisters on drop; the codec stays for the life of the process.
        std::mem::forget(zarrs_codec::register_codec_v2(plugin));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes numcodecs.LZ4().encode(np.arange(8, dtype='<u2').tobytes()) produces: a 4-byte
    /// size header then an LZ4 block; decoding must give the input back.
    #[test]
    fn round_trips_numcodecs_framing() {
        let data: Vec<u8> = (0u16..64).flat_map(|v| v.to_le_bytes()).collect();
        let c = Lz4Codec::default();
        let enc = c
            .encode(Cow::Borrowed(&data), &CodecOptions::default())
            .unwrap();
        assert_eq!(
            u32::from_le_bytes(enc[..4].try_into().unwrap()) as usize,
            data.len()
        );
        let dec = c
            .decode(
                enc,
                &BytesRepresentation::FixedSize(data.len() as u64),
                &CodecOptions::default(),
            )
            .unwrap();
        assert_eq!(dec.as_ref(), &data[..]);
        for bad in [
            &[9u8, 0, 0, 0, 1][..],
            &[1, 0][..],
            &[200, 0, 0, 0, 0x10, 0x41][..],
        ] {
            assert!(
                c.decode(
                    Cow::Borrowed(bad),
                    &BytesRepresentation::UnboundedSize,
                    &CodecOptions::default()
                )
                .is_err(),
                "{bad:?}"
            );
        }
    }
}
