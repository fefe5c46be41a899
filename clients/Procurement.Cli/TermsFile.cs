using System.Text.Json;
using Google.Protobuf;
using Procurement.Api.V1;
using YamlDotNet.RepresentationModel;

namespace Procurement.Cli;

/// <summary>
/// Contract terms from a file in protobuf JSON (<c>.json</c>) or the same shape in YAML (<c>.yaml</c>,
/// <c>.yml</c>); field names in snake_case or camelCase, enums by name, decimals as strings.
/// </summary>
public static class TermsFile
{
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(false));

    public static ContractTerms Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new InputException($"terms file '{path}' does not exist");
        }

        var text = File.ReadAllText(path);
        var json = path.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)
            ? YamlToJson(text, path)
            : text;
        try
        {
            return Parser.Parse<ContractTerms>(json);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InputException($"terms file '{path}': {e.Message}");
        }
        catch (InvalidJsonException e)
        {
            throw new InputException($"terms file '{path}' is not valid JSON: {e.Message}");
        }
    }

    private static string YamlToJson(string yaml, string path)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new InputException($"terms file '{path}' is not valid YAML: {e.Message}");
        }

        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Write(stream.Documents.Count == 0 ? new YamlMappingNode() : stream.Documents[0].RootNode, writer);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Plain true/false become booleans; every other scalar stays a string (proto JSON reads numbers from strings).</summary>
    private static void Write(YamlNode node, Utf8JsonWriter w)
    {
        switch (node)
        {
            case YamlMappingNode map:
                w.WriteStartObject();
                foreach (var (key, value) in map.Children)
                {
                    w.WritePropertyName(((YamlScalarNode)key).Value!);
                    Write(value, w);
                }

                w.WriteEndObject();
                break;
            case YamlSequenceNode seq:
                w.WriteStartArray();
                foreach (var item in seq.Children)
                {
                    Write(item, w);
                }

                w.WriteEndArray();
                break;
            case YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain, Value: "true" or "false" } b:
                w.WriteBooleanValue(b.Value == "true");
                break;
            case YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain, Value: "null" or "~" or "" }:
                w.WriteNullValue();
                break;
            case YamlScalarNode s:
                w.WriteStringValue(s.Value);
                break;
        }
    }
}

/// <summary>Bad input found before any call (a file, a time, a number): exit code 3 like INVALID_ARGUMENT.</summary>
public sealed class InputException(string message) : Exception(message);
