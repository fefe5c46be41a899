using System.Text;

namespace Procurement.Server.ErrorHandling;

/// <summary>
/// Bounds on what an error carries back. A bad value is echoed as a prefix and its length, never
/// whole: an error's message and details travel in trailers, and a client refuses a header block
/// larger than a few KB, leaving its caller to wait out the deadline.
/// </summary>
public static class ErrorText
{
    /// <summary>The status message, in UTF-8 bytes (percent-encoded on the wire, so up to three times this).</summary>
    public const int MaxMessageBytes = 512;

    /// <summary>One field name, description or metadata value.</summary>
    public const int MaxPartBytes = 256;

    /// <summary>All details together, before base64.</summary>
    public const int MaxDetailsBytes = 3_000;

    public const int MaxViolations = 100;

    /// <summary><paramref name="text"/> if it fits in <paramref name="maxBytes"/> UTF-8 bytes, else its start and its length.</summary>
    public static string Bound(string text, int maxBytes)
    {
        if (text.Length <= maxBytes / 4 || Encoding.UTF8.GetByteCount(text) <= maxBytes)
        {
            return text;
        }

        var suffix = $"… ({text.Length:N0} characters)";
        var room = maxBytes - Encoding.UTF8.GetByteCount(suffix);
        var end = 0;
        var bytes = 0;
        while (end < text.Length)
        {
            var width = char.IsSurrogatePair(text, end) ? 2 : 1;
            var size = Encoding.UTF8.GetByteCount(text.AsSpan(end, width));
            if (bytes + size > room)
            {
                break;
            }

            bytes += size;
            end += width;
        }

        return string.Concat(text.AsSpan(0, end), suffix);
    }
}
