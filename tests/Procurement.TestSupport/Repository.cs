namespace Procurement.TestSupport;

/// <summary>Files of the repository the tests run from (docs and generated files they check).</summary>
public static class Repository
{
    /// <summary>The folder holding Procurement.sln, above the test's own folder.</summary>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Procurement.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Procurement.sln not found above the test's folder.");
    }
}
